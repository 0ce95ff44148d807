/** A line chart written as a PNG with node:zlib only (no canvas): axes, grid, one coloured polyline per series. */
import { deflateSync } from 'node:zlib';

export interface Series {
  name: string;
  color: [number, number, number];
  points: [number, number][];
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(buf: Buffer): number {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([len, body, crc]);
}

/** Series drawn over [0, xMax] × [0, yMax]; light grid lines at tenths. */
export function lineChartPng(series: Series[], width = 900, height = 500): Buffer {
  const px = Buffer.alloc(width * height * 3, 255);
  const set = (x: number, y: number, c: [number, number, number]) => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const i = (y * width + x) * 3;
    px[i] = c[0];
    px[i + 1] = c[1];
    px[i + 2] = c[2];
  };
  const m = { l: 50, r: 20, t: 20, b: 40 };
  const w = width - m.l - m.r;
  const h = height - m.t - m.b;
  const xMax = Math.max(...series.flatMap((s) => s.points.map((p) => p[0])));
  const yMax = Math.max(...series.flatMap((s) => s.points.map((p) => p[1]))) * 1.05 || 1;
  const X = (x: number) => Math.round(m.l + (x / xMax) * w);
  const Y = (y: number) => Math.round(m.t + h - (y / yMax) * h);
  for (let k = 0; k <= 10; k++) {
    for (let x = m.l; x <= m.l + w; x++) set(x, Math.round(m.t + (h * k) / 10), [225, 225, 225]);
    for (let y = m.t; y <= m.t + h; y++) set(Math.round(m.l + (w * k) / 10), y, [225, 225, 225]);
  }
  for (let x = m.l; x <= m.l + w; x++) set(x, m.t + h, [0, 0, 0]);
  for (let y = m.t; y <= m.t + h; y++) set(m.l, y, [0, 0, 0]);
  const line = (x0: number, y0: number, x1: number, y1: number, c: [number, number, number]) => {
    const n = Math.max(Math.abs(x1 - x0), Math.abs(y1 - y0), 1);
    for (let i = 0; i <= n; i++) {
      const x = Math.round(x0 + ((x1 - x0) * i) / n);
      const y = Math.round(y0 + ((y1 - y0) * i) / n);
      for (let d = -1; d <= 1; d++) set(x, y + d, c);
    }
  };
  for (const s of series) {
    for (let i = 1; i < s.points.length; i++)
      line(X(s.points[i - 1]![0]), Y(s.points[i - 1]![1]), X(s.points[i]![0]), Y(s.points[i]![1]), s.color);
  }
  // Legend: a colour swatch per series, in order, top left.
  series.forEach((s, i) => {
    for (let y = 0; y < 10; y++) for (let x = 0; x < 30; x++) set(m.l + 10 + x, m.t + 10 + i * 16 + y, s.color);
  });
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) px.copy(raw, y * (width * 3 + 1) + 1, y * width * 3, (y + 1) * width * 3);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
