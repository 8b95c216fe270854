/**
 * Headless Chromium for browser tests, driven over the DevTools protocol by playwright-core with
 * the system's Chromium (Debian package `chromium`; never a downloaded browser).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { type Browser, chromium, type Page } from "playwright-core";

/** The Chromium binary: `BWS_CHROMIUM`, else Debian's. */
export const CHROMIUM_PATH: string = Deno.env.get("BWS_CHROMIUM") ?? "/usr/bin/chromium";

/**
 * Flags that let Chromium run as root in a container and keep it off the network. Playwright
 * adds `--headless` and a fresh temporary `--user-data-dir` (removed on close) itself.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Starts headless Chromium, or returns the reason it cannot (for a test's `skip`). */
export async function launchChromium(): Promise<Browser | string> {
  try {
    await Deno.stat(CHROMIUM_PATH);
  } catch {
    return `Chromium is not installed at ${CHROMIUM_PATH} (Debian package "chromium")`;
  }
  try {
    return await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [...CHROMIUM_ARGS],
      timeout: 30_000,
    });
  } catch (err) {
    const first = String((err as Error)?.message ?? err).split("\n")[0];
    return `Chromium at ${CHROMIUM_PATH} cannot start: ${first}`;
  }
}

/** What a screenshot shows, measured by decoding it in the browser. */
export interface ImageStats {
  readonly width: number;
  readonly height: number;
  /** Distinct colours among sampled pixels (capped at 4096). */
  readonly colours: number;
  /** Standard deviation of the sampled pixels' luminance, 0-255. */
  readonly luminanceStdDev: number;
}

/** Decodes a PNG in a blank page of `browser` and measures its pixels. */
export async function imageStats(browser: Browser, png: Uint8Array): Promise<ImageStats> {
  const page: Page = await browser.newPage();
  try {
    const dataUrl = `data:image/png;base64,${Buffer.from(png).toString("base64")}`;
    return await page.evaluate(`(async () => {
      const img = new Image();
      img.src = ${JSON.stringify(dataUrl)};
      await img.decode();
      const canvas = document.createElement("canvas");
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext("2d");
      ctx.drawImage(img, 0, 0);
      const d = ctx.getImageData(0, 0, img.width, img.height).data;
      const colours = new Set();
      let sum = 0, sum2 = 0, n = 0;
      for (let i = 0; i < d.length; i += 4 * 3) {
        const l = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
        sum += l; sum2 += l * l; n++;
        if (colours.size < 4096) colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
      }
      const mean = sum / n;
      return {
        width: img.width,
        height: img.height,
        colours: colours.size,
        luminanceStdDev: Math.sqrt(Math.max(0, sum2 / n - mean * mean)),
      };
    })()`) as ImageStats;
  } finally {
    await page.close();
  }
}
