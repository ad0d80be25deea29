// The workbench: a single-page app at the site's root (`dist/`).
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  plugins: [react()],
  base: "./",
  publicDir: false,
  build: { outDir: "dist", emptyOutDir: true, sourcemap: true },
  server: { port: 5173, strictPort: false },
});
