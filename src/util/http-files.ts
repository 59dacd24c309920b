/**
 * Serves a fixed set of in-memory files under a `GET /x/*` route with the answers of Prosody's
 * net.http.files: `..` climbing out of the folder → 400, unknown → 404, a folder without its
 * trailing slash → 301 to it, a folder → 403 (no listings); files with Etag/Last-Modified and
 * 304 for a matching If-None-Match (or, without one, an identical If-Modified-Since).
 */
import { createHash } from "node:crypto";

export interface FileEntry {
  body: Buffer;
  /** Content-Type; none is sent when undefined (as Prosody does for unmapped extensions). */
  type?: string;
}

interface StaticEvent {
  request: { path: string; headers: Record<string, string | undefined> };
  response: { headers: Record<string, string> };
}

type Answer = number | Buffer;

export function serveFiles(files: Record<string, FileEntry>, lastModified = new Date()): (event: StaticEvent, rest?: string) => Answer {
  const modified = new Date(Math.floor(lastModified.getTime() / 1000) * 1000).toUTCString();
  const entries = new Map<string, FileEntry & { etag: string }>();
  const folders = new Set<string>([""]);
  for (const [path, file] of Object.entries(files)) {
    const digest = createHash("sha1").update(file.body).digest("hex").slice(0, 16);
    entries.set(path, { ...file, etag: `"${file.body.length.toString(16)}-${digest}"` });
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
  }
  const folderTag = (path: string) => `"d-${createHash("sha1").update(path).digest("hex").slice(0, 16)}"`;

  return (event, rest = "") => {
    const parts: string[] = [];
    for (const part of rest.split("/")) {
      if (part === "" || part === ".") continue;
      if (part.includes("\0")) return 400;
      if (part === "..") {
        if (!parts.length) return 400;
        parts.pop();
      } else parts.push(part);
    }
    const path = parts.join("/");
    const slash = rest.endsWith("/") || rest === "";
    const file = entries.get(path);
    if (!file && !folders.has(path)) return 404;

    const { request, response } = event;
    const etag = file ? file.etag : folderTag(path);
    response.headers.last_modified = modified;
    response.headers.etag = etag;
    const ifNoneMatch = request.headers.if_none_match;
    if (etag === ifNoneMatch || (ifNoneMatch === undefined && request.headers.if_modified_since === modified)) return 304;

    if (file) {
      if (slash) return 403; // "file.svg/": not a folder
      if (file.type) response.headers.content_type = file.type;
      return file.body;
    }
    if (!slash) {
      const segments: string[] = [];
      for (const s of request.path.split("/")) {
        if (s === "..") segments.pop();
        else if (s !== "" && s !== ".") segments.push(s);
      }
      response.headers.location = `/${segments.map(encodeURIComponent).join("/")}/`;
      return 301;
    }
    return 403;
  };
}
