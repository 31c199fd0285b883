// Opens the ComfyUI frontend as a new user in headless Chromium, finds a template by its title in
// the template browser the frontend shows on first start, opens it and prints a JSON summary: the
// nodes it put on the canvas, console errors, screenshot.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const USAGE =
  'usage: node open_template.mjs --url URL --title TITLE --artifacts DIR [--chromium PATH]';
// The machines these tests run on can be slow and busy: patient waits for every UI step.
const UI_TIMEOUT_MS = 60_000;

function readOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      title: { type: 'string' },
      artifacts: { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  });
  for (const name of ['url', 'title', 'artifacts']) {
    if (!values[name]) throw new Error(`missing --${name}\n${USAGE}`);
  }
  return values;
}

function watchPage(page) {
  const seen = { consoleErrors: [], pageErrors: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') {
      seen.consoleErrors.push({ text: message.text(), url: message.location()?.url ?? '' });
    }
  });
  page.on('pageerror', (error) => seen.pageErrors.push(String(error.stack || error)));
  return seen;
}

// The template browser's card called `title`, clicked; resolves once the canvas holds a new graph.
async function openTemplate(page, title) {
  const browser = page.getByRole('dialog').filter({ hasText: 'Templates' });
  await browser.getByText(title, { exact: true }).first().click();
  await browser.waitFor({ state: 'hidden' });
  await page.waitForFunction(() =>
    window.app.graph.nodes.some((node) => node.type === 'CheckpointLoaderSimple'),
  );
}

function canvasNodes(page) {
  return page.evaluate(() =>
    window.app.graph.nodes.map((node) => ({ type: node.type, widgets_values: node.widgets_values })),
  );
}

async function main() {
  const options = readOptions();
  mkdirSync(options.artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: options.chromium, headless: true });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const seen = watchPage(page);
  const summary = { browser: `chromium ${browser.version()}`, title: options.title };
  try {
    await page.goto(options.url);
    await openTemplate(page, options.title);
    summary.nodes = await canvasNodes(page);
    summary.screenshot = join(options.artifacts, 'template.png');
    await page.screenshot({ path: summary.screenshot });
  } catch (error) {
    summary.error = String(error.stack || error);
    summary.screenshot = join(options.artifacts, 'template-failure.png');
    await page.screenshot({ path: summary.screenshot });
  } finally {
    summary.console_errors = seen.consoleErrors;
    summary.page_errors = seen.pageErrors;
    await browser.close();
  }
  console.log(JSON.stringify(summary));
  process.exitCode = summary.error ? 1 : 0;
}

await main();
