// Opens the ComfyUI frontend as a new user in headless Chromium, finds a template by its title in
// the template browser the frontend shows on first start, opens it and prints a JSON summary: the
// nodes it put on the canvas, console errors, screenshot.
import { join } from 'node:path';

import { readOptions, runOnPage } from './browser_page.mjs';

const USAGE =
  'usage: node open_template.mjs --url URL --title TITLE --artifacts DIR [--chromium PATH]';

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
  const options = readOptions(['url', 'title', 'artifacts'], [], USAGE);
  const fields = { title: options.title };
  await runOnPage(options, fields, 'template-failure.png', async (page, _seen, summary) => {
    await page.goto(options.url);
    await openTemplate(page, options.title);
    summary.nodes = await canvasNodes(page);
    summary.screenshot = join(options.artifacts, 'template.png');
    await page.screenshot({ path: summary.screenshot });
  });
}

await main();
