/**
 * A tiny raster canvas and PNG encoder, enough to draw the two bitmap logos this module serves
 * (simple anti-aliased shapes; 8-bit RGBA, no filtering, zlib from node).
 */
import { deflateSync } from "node:zlib";

export type Rgba = readonly [number, number, number, number];
/** Whether the point (x, y), in pixel units, lies inside the shape. */
export type Shape = (x: number, y: number) => boolean;

const SAMPLES = 4;

export class Canvas {
  readonly pixels: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
  ) {
    this.pixels = new Uint8Array(width * height * 4);
  }

  /** Paints `shape` in `color`, anti-aliased by 4×4 supersampling, over what is there. */
  fill(shape: Shape, color: Rgba): this {
    const [r, g, b, a] = color;
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        let hits = 0;
        for (let sy = 0; sy < SAMPLES; sy++) {
          for (let sx = 0; sx < SAMPLES; sx++) {
            if (shape(x + (sx + 0.5) / SAMPLES, y + (sy + 0.5) / SAMPLES)) hits++;
          }
        }
        if (!hits) continue;
        const alpha = (a / 255) * (hits / (SAMPLES * SAMPLES));
        const i = (y * this.width + x) * 4;
        const p = this.pixels;
        const under = p[i + 3]! / 255;
        const out = alpha + under * (1 - alpha);
        const mix = (top: number, bottom: number) => (out === 0 ? 0 : Math.round((top * alpha + bottom * under * (1 - alpha)) / out));
        p[i] = mix(r, p[i]!);
        p[i + 1] = mix(g, p[i + 1]!);
        p[i + 2] = mix(b, p[i + 2]!);
        p[i + 3] = Math.round(out * 255);
      }
    }
    return this;
  }

  toPng(): Buffer {
    return encodePng(this.width, this.height, this.pixels);
  }
}

// --- Shapes ---

export const circle = (cx: number, cy: number, r: number): Shape => (x, y) => (x - cx) ** 2 + (y - cy) ** 2 <= r * r;

export const ellipse =
  (cx: number, cy: number, rx: number, ry: number, angle = 0): Shape =>
  (x, y) => {
    const c = Math.cos(angle);
    const s = Math.sin(angle);
    const dx = x - cx;
    const dy = y - cy;
    const u = dx * c + dy * s;
    const v = -dx * s + dy * c;
    return (u / rx) ** 2 + (v / ry) ** 2 <= 1;
  };

export const roundRect =
  (x0: number, y0: number, w: number, h: number, r: number): Shape =>
  (x, y) => {
    if (x < x0 || y < y0 || x > x0 + w || y > y0 + h) return false;
    const cx = Math.min(Math.max(x, x0 + r), x0 + w - r);
    const cy = Math.min(Math.max(y, y0 + r), y0 + h - r);
    return (x - cx) ** 2 + (y - cy) ** 2 <= r * r;
  };

/** A polygon (even-odd rule). */
export const polygon =
  (points: ReadonlyArray<readonly [number, number]>): Shape =>
  (x, y) => {
    let inside = false;
    for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
      const [xi, yi] = points[i]!;
      const [xj, yj] = points[j]!;
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };

export const minus = (a: Shape, b: Shape): Shape => (x, y) => a(x, y) && !b(x, y);

// --- Encoding ---

let crcTable: Uint32Array | undefined;

function crc32(data: Uint8Array): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of data) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, "latin1");
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
  return Buffer.concat([head, data, crc]);
}

/** 8-bit RGBA, non-interlaced. */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 6; // colour type: RGBA
  const rows = Buffer.alloc((width * 4 + 1) * height);
  for (let y = 0; y < height; y++) {
    rows[y * (width * 4 + 1)] = 0; // filter: none
    rows.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (width * 4 + 1) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk("IHDR", ihdr),
    chunk("IDAT", deflateSync(rows, { level: 9 })),
    chunk("IEND", new Uint8Array(0)),
  ]);
}
