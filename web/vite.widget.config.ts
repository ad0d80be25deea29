// The visitor widget: one script (`dist/widget/widget.js`) that a site embeds with
// `<script src=".../widget/widget.js" data-inbox="<public key>" async></script>`, and a
// demo page (`dist/widget/demo.html`) that embeds it.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  publicDir: "widget-public",
  define: { "process.env.NODE_ENV": JSON.stringify("production") },
  build: {
    outDir: "dist/widget",
    emptyOutDir: true,
    sourcemap: true,
    lib: {
      entry: "src/widget/main.tsx",
      name: "HelpdeskWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
