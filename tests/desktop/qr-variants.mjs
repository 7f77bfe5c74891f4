// What people show at a gate, made from a ticket image that `entrada ticket
// qr` rendered (8-bit grey PNG, 8 px per module, 4-module quiet zone): its
// negative (a dark-mode wallet) or a crop with less quiet zone (a tightly
// cropped screenshot). Written as BMP, which the folder camera reads, so
// no image library is needed here: node's zlib inflates the PNG.
import { readFileSync, writeFileSync } from 'node:fs';
import { inflateSync } from 'node:zlib';

const PX_PER_MODULE = 8;
const QUIET_MODULES = 4;

/** An 8-bit greyscale, non-interlaced PNG as { width, height, pixels }. */
export function readGreyPng(file) {
  const buf = readFileSync(file);
  let pos = 8; // signature
  let width = 0;
  let height = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const [depth, colour, , , interlace] = data.subarray(8, 13);
      if (depth !== 8 || colour !== 0 || interlace !== 0) throw new Error(`${file}: not an 8-bit grey PNG`);
    } else if (type === 'IDAT') {
      idat.push(data);
    }
    pos += 12 + len;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (width + 1)];
    for (let x = 0; x < width; x++) {
      const v = raw[y * (width + 1) + 1 + x];
      const a = x > 0 ? pixels[y * width + x - 1] : 0;
      const b = y > 0 ? pixels[(y - 1) * width + x] : 0;
      const c = x > 0 && y > 0 ? pixels[(y - 1) * width + x - 1] : 0;
      const p = a + b - c;
      const paeth = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
      const pred = [0, a, b, (a + b) >> 1, paeth][filter];
      if (pred === undefined) throw new Error(`${file}: bad PNG filter ${filter}`);
      pixels[y * width + x] = (v + pred) & 255;
    }
  }
  return { width, height, pixels };
}

/** A 24-bit BMP of a grey image. */
export function writeGreyBmp(file, { width, height, pixels }) {
  const stride = (width * 3 + 3) & ~3;
  const out = Buffer.alloc(54 + stride * height);
  out.write('BM', 0, 'latin1');
  out.writeUInt32LE(out.length, 2);
  out.writeUInt32LE(54, 10);
  out.writeUInt32LE(40, 14);
  out.writeInt32LE(width, 18);
  out.writeInt32LE(height, 22);
  out.writeUInt16LE(1, 26);
  out.writeUInt16LE(24, 28);
  out.writeUInt32LE(stride * height, 34);
  for (let y = 0; y < height; y++) {
    const row = 54 + (height - 1 - y) * stride; // bottom-up
    for (let x = 0; x < width; x++) out.fill(pixels[y * width + x], row + 3 * x, row + 3 * x + 3);
  }
  writeFileSync(file, out);
}

/** The ticket image `png` as a variant: `invert` for light on dark,
 * `quiet` modules of quiet zone kept (0–4). */
export function qrVariant(png, out, { invert = false, quiet = QUIET_MODULES } = {}) {
  const img = readGreyPng(png);
  const cut = (QUIET_MODULES - quiet) * PX_PER_MODULE;
  const width = img.width - 2 * cut;
  const height = img.height - 2 * cut;
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const v = img.pixels[(y + cut) * img.width + x + cut];
      pixels[y * width + x] = invert ? 255 - v : v;
    }
  }
  writeGreyBmp(out, { width, height, pixels });
}
