// Walks the shop like a customer, in headless Chromium, keeping a
// screenshot of each page. Usage: node walk.mjs BASE_URL OUT_DIR COVER_PNG
import { chromium } from "playwright-core";
import { mkdirSync, readFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { inflateSync } from "node:zlib";

// What a screenshot shows, decoded here rather than trusted: its size, how
// many distinct colours it has, and the share of pixels that differ from
// the most common colour (the background). A blank page has one colour.
const decodePng = (buf) => {
  if (!buf.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    throw new Error("not a PNG");
  }
  let pos = 8, width = 0, height = 0, depth = 0, type = 0, interlace = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos);
    const kind = buf.toString("latin1", pos + 4, pos + 8);
    const data = buf.subarray(pos + 8, pos + 8 + len);
    if (kind === "IHDR") {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      [depth, type, interlace] = [data[8], data[9], data[12]];
    } else if (kind === "IDAT") {
      idat.push(data);
    } else if (kind === "IEND") {
      break;
    }
    pos += 12 + len;
  }
  const channels = { 2: 3, 6: 4 }[type];
  if (depth !== 8 || !channels || interlace !== 0) {
    throw new Error(`unsupported PNG: depth ${depth}, colour type ${type}, interlace ${interlace}`);
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * channels;
  if (raw.length !== height * (stride + 1)) throw new Error("truncated PNG data");
  const px = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const out = px.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? px.subarray((y - 1) * stride, y * stride) : Buffer.alloc(stride);
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? out[i - channels] : 0;
      const b = prev[i];
      const c = i >= channels ? prev[i - channels] : 0;
      let v;
      switch (f) {
        case 0: v = 0; break;
        case 1: v = a; break;
        case 2: v = b; break;
        case 3: v = (a + b) >> 1; break;
        case 4: {
          const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
          break;
        }
        default: throw new Error(`bad PNG filter ${f}`);
      }
      out[i] = (line[i] + v) & 0xff;
    }
  }
  const counts = new Map();
  for (let i = 0; i < px.length; i += channels) {
    const k = px.readUIntBE(i, 3) * 256 + (channels === 4 ? px[i + 3] : 255);
    counts.set(k, (counts.get(k) || 0) + 1);
  }
  const background = Math.max(...counts.values());
  return { width, height, colours: counts.size, ink: 1 - background / (width * height) };
};

const [base, out, cover] = process.argv.slice(2);
mkdirSync(out, { recursive: true });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
const page = await browser.newPage();
let step = 0;
const report = { shots: {}, cover: null };
const shot = async (name) => {
  step += 1;
  const file = `${String(step).padStart(2, "0")}-${name}.png`;
  const png = await page.screenshot({ path: `${out}/${file}`, fullPage: true });
  // The page's own idea of its size and content, to hold the picture against.
  const dom = await page.evaluate(() => ({
    width: document.documentElement.scrollWidth,
    height: document.documentElement.scrollHeight,
    scale: window.devicePixelRatio,
    text: document.body.innerText.trim().length,
  }));
  report.shots[file] = {
    sha256: createHash("sha256").update(png).digest("hex"),
    ...decodePng(png),
    dom,
  };
};
const expectText = async (text) => {
  const body = await page.textContent("body");
  if (!body.includes(text)) throw new Error(`expected "${text}" on ${page.url()}:\n${body}`);
};

await page.goto(`${base}/register`);
await page.fill("#name", "Grace");
await page.fill("#email", "grace@example.com");
await page.fill("#password", "a good password");
await shot("register");
await page.click("button[type=submit]");
await page.waitForURL(`${base}/login`);
await expectText("Your account is ready");
await page.fill("#email", "grace@example.com");
await page.fill("#password", "a good password");
await shot("login");
await page.click("button[type=submit]");
await page.waitForURL(`${base}/book/catalog`);

await page.goto(`${base}/book/add_book`);
await page.fill("#title", "The Left Hand of Darkness");
await page.fill("#author", "Ursula K. Le Guin");
await page.fill("#description", "Winter.");
await page.fill("#price", "14.90");
await page.fill("#stock", "3");
await page.setInputFiles("#cover", cover);
await shot("add-book");
// The cover as the browser received it on the next page.
const coverResponse = page.waitForResponse((r) => new URL(r.url()).pathname.startsWith("/covers/"));
await page.click("button[type=submit]");
await page.waitForURL(`${base}/book/my_books`);
await expectText("is in the catalog");
const img = await page.$("img.img-thumbnail");
if (!img) throw new Error("the cover is not shown");
const shown = await img.evaluate(async (i) => {
  if (!i.complete) {
    await new Promise((ok) => { i.onload = ok; i.onerror = ok; });
  }
  return { src: i.currentSrc, complete: i.complete, naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight };
});
const received = await coverResponse;
report.cover = {
  ...shown,
  path: new URL(shown.src).pathname,
  response_path: new URL(received.url()).pathname,
  status: received.status(),
  content_type: received.headers()["content-type"],
  bytes: (await received.body()).toString("hex"),
  uploaded: readFileSync(cover).toString("hex"),
};
await shot("my-books");

await page.goto(`${base}/book/catalog`);
await expectText("The Left Hand of Darkness");
await page.fill("input[name=quantity]", "2");
await shot("catalog");
await page.click("form[action^='/buy/'] button");
await page.waitForURL(/\/payment\/\d+$/);
await expectText("29.80");
await shot("payment");
await page.click("button[type=submit]");
await page.waitForURL(/\/delivery\/\d+$/);
await page.check("input[name=provider_id][value='3']");
await shot("delivery");
await page.click("button[type=submit]");
await page.waitForURL(`${base}/purchases`);
await expectText("Shipping with Envia");
await expectText("29.80");
await shot("my-purchases");
await browser.close();
console.log(`ok: ${step} screenshots in ${out}`);
console.log(`REPORT ${JSON.stringify(report)}`);
