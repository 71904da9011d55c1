// Walks the shop like a customer, in headless Chromium, keeping a
// screenshot of each page. Usage: node walk.mjs BASE_URL OUT_DIR COVER_PNG
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

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
const shot = async (name) => {
  step += 1;
  await page.screenshot({ path: `${out}/${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
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
await page.click("button[type=submit]");
await page.waitForURL(`${base}/book/my_books`);
await expectText("is in the catalog");
const img = await page.$("img.img-thumbnail");
if (!img) throw new Error("the cover is not shown");
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
