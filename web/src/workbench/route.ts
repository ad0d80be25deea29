// The workbench's pages live in the URL's hash: `#/<page>/<id>?<query>`.

import { useEffect, useState } from "react";

export interface Route {
  page: string;
  id?: string;
  query: URLSearchParams;
}

function parseRoute(hash: string): Route {
  const [path, query = ""] = hash.replace(/^#\/?/, "").split("?");
  const [page = "", ...rest] = path.split("/").filter(Boolean);
  return { page: page || "conversations", id: rest.join("/") || undefined, query: new URLSearchParams(query) };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = () => setRoute(parseRoute(location.hash));
    window.addEventListener("hashchange", on);
    return () => window.removeEventListener("hashchange", on);
  }, []);
  return route;
}

export function go(page: string, id?: string, query?: Record<string, string>): void {
  const q = query ? `?${new URLSearchParams(query)}` : "";
  location.hash = `#/${page}${id ? `/${id}` : ""}${q}`;
}
