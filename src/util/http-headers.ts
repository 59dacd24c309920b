/**
 * Response headers for pages whose URL or content is a secret (an invite token): not stored by
 * any cache, the URL not sent to other sites as a Referer, not framed by another site
 * (clickjacking a sign-up form), and the content type taken as declared.
 *
 * For `module.provides("http", { headers: SECRET_PAGE_HEADERS, … })`, which puts them on every
 * response of the app, error pages and redirects included.
 */
export const SECRET_PAGE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "Cache-Control": "no-store",
  "Referrer-Policy": "no-referrer",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Content-Security-Policy": "frame-ancestors 'none'",
});
