/**
 * HTML error pages (the role of Prosody's mod_http_errors). The markup is our own; what is
 * kept for compatibility is the title/heading text "<code> <reason>", the per-status
 * messages and the optional extra line (e.g. "Unknown host: x").
 */
import type { ErrorPageConfig } from "./types.js";

export const HTML_CONTENT_TYPE = "text/html; charset=utf-8";

const NOT_FOUND_QUIPS = ["Where did you put it?", "It's behind you.", "Keep looking."];
const BROKEN_QUIPS = ["Gremlins.", "It broke.", "Don't look at me."];
const DEFAULT_MESSAGE = "That's all I know.";

const XML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&apos;",
};

export function xmlEscape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => XML_ESCAPES[c]!);
}

function pick(list: string[]): string {
  return list[Math.floor(Math.random() * list.length)]!;
}

/** The human message for a status: overrides first, then the built-in texts. */
export function errorMessage(code: number, config: ErrorPageConfig = {}): string {
  const custom = config.messages?.[code];
  if (typeof custom === "string") return custom;
  switch (code) {
    case 400:
      return "What kind of request do you call that??";
    case 403:
      return "You're not allowed to do that.";
    case 404:
      return `Whatever you were looking for is not here. ${pick(NOT_FOUND_QUIPS)}`;
    case 500:
      return `${pick(BROKEN_QUIPS)} Check your error log for more info.`;
    default:
      return config.defaultMessage ?? DEFAULT_MESSAGE;
  }
}

const STYLE = [
  "html{font:18px/1.5 system-ui,sans-serif;color:#222;background:#fafafa}",
  "main{max-width:38em;margin:12vh auto;padding:0 1em;text-align:center}",
  "h1{font-size:2.2em;margin:0 0 .4em}",
  ".detail{font-family:monospace;color:#555}",
  "@media (prefers-color-scheme:dark){html{color:#ddd;background:#1b1b1b}.detail{color:#aaa}}",
].join("\n");

function page(title: string, heading: string, paragraphs: string[]): string {
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${title}</title>`,
    `<style>\n${STYLE}\n</style>`,
    "</head>",
    "<body>",
    "<main>",
    `<h1>${heading}</h1>`,
    ...paragraphs,
    "</main>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/** Error page: title and heading "<code> <reason>", the message, and an optional extra line. */
export function renderErrorPage(code: number, reason: string, message: string, extra?: string): string {
  const heading = xmlEscape(`${code} ${reason}`);
  const paragraphs = [`<p class="message">${xmlEscape(message)}</p>`];
  if (extra !== undefined && extra !== "") paragraphs.push(`<p class="detail">${xmlEscape(extra)}</p>`);
  return page(heading, heading, paragraphs);
}

/** What a 404 for "/" becomes: a 200 "Prosody is running!" page. */
export function renderRunningPage(): string {
  return page("Prosody is running!", "Prosody is running!", [
    '<p class="message">This server is up and answering HTTP requests.</p>',
  ]);
}
