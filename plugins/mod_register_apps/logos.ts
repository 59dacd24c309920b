/**
 * The logo files served under /register_apps/assets/ (file names as in Prosody's module, so
 * configs and pages that name them keep working). The artwork is ours: letter badges as SVG,
 * and two small drawn PNGs where the well-known file names end in .png.
 */
import { Canvas, circle, ellipse, minus, polygon, roundRect, type Rgba } from "./png.js";

function letterBadge(label: string, background: string, title: string): string {
  const size = label.length > 1 ? 46 : 60;
  return [
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96" role="img">',
    `<title>${title}</title>`,
    `<rect width="96" height="96" rx="22" fill="${background}"/>`,
    `<text x="50" y="50" dy=".35em" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" font-weight="700" font-size="${size}" fill="#ffffff">${label}</text>`,
    "</svg>",
    "",
  ].join("\n");
}

const GENERIC = [
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 96 96" role="img">',
  "<title>Chat app</title>",
  '<rect width="96" height="96" rx="22" fill="#5f6b7a"/>',
  '<path d="M20 28 q0-8 8-8 h40 q8 0 8 8 v26 q0 8-8 8 H42 l-14 12 v-12 h0 q-8 0-8-8z" fill="#ffffff"/>',
  '<circle cx="36" cy="41" r="5" fill="#5f6b7a"/><circle cx="48" cy="41" r="5" fill="#5f6b7a"/><circle cx="60" cy="41" r="5" fill="#5f6b7a"/>',
  "</svg>",
  "",
].join("\n");

const WHITE: Rgba = [255, 255, 255, 255];

/** A dog's face in a blue tile. */
function beagleLogo(): Buffer {
  const c = new Canvas(96, 96);
  c.fill(roundRect(0, 0, 96, 96, 22), [36, 96, 160, 255]);
  c.fill(ellipse(24, 46, 11, 22, 0.35), [139, 90, 50, 255]);
  c.fill(ellipse(72, 46, 11, 22, -0.35), [139, 90, 50, 255]);
  c.fill(ellipse(48, 50, 22, 26), WHITE);
  c.fill(ellipse(48, 34, 14, 10), [196, 140, 86, 255]);
  c.fill(circle(40, 46, 3.5), [30, 30, 30, 255]);
  c.fill(circle(56, 46, 3.5), [30, 30, 30, 255]);
  c.fill(ellipse(48, 62, 6, 4.5), [30, 30, 30, 255]);
  return c.toPng();
}

/** A small bird in a yellow tile. */
function siskinLogo(): Buffer {
  const c = new Canvas(96, 96);
  c.fill(roundRect(0, 0, 96, 96, 22), [240, 190, 30, 255]);
  const body = ellipse(46, 54, 24, 18, -0.3);
  c.fill(body, [45, 55, 40, 255]);
  c.fill(minus(ellipse(50, 60, 16, 9, -0.3), ellipse(46, 66, 16, 8, -0.3)), [250, 220, 80, 255]);
  c.fill(circle(64, 38, 12), [45, 55, 40, 255]);
  c.fill(polygon([[74, 34], [86, 39], [74, 43]]), [235, 120, 30, 255]);
  c.fill(circle(67, 36, 3), WHITE);
  c.fill(polygon([[26, 56], [10, 70], [30, 64]]), [45, 55, 40, 255]);
  return c.toPng();
}

export interface Asset {
  body: Buffer;
  type: string;
}

const svg = (text: string): Asset => ({ body: Buffer.from(text, "utf8"), type: "image/svg+xml" });
const png = (data: Buffer): Asset => ({ body: data, type: "image/png" });

/** Paths relative to the assets folder → content. */
export function logoAssets(): Record<string, Asset> {
  return {
    "logos/beagle-im.png": png(beagleLogo()),
    "logos/conversations.svg": svg(letterBadge("C", "#2e8b57", "Conversations")),
    "logos/converse-js.svg": svg(letterBadge("cj", "#2b6d8c", "Converse.js")),
    "logos/dino.svg": svg(letterBadge("D", "#3566b8", "Dino")),
    "logos/gajim.svg": svg(letterBadge("G", "#3d8fc6", "Gajim")),
    "logos/generic.svg": svg(GENERIC),
    "logos/monal.svg": svg(letterBadge("M", "#1f7a8c", "Monal")),
    "logos/siskin-im.png": png(siskinLogo()),
    "logos/yaxim.svg": svg(letterBadge("y", "#c8502a", "yaxim")),
  };
}
