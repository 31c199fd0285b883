// Opens a workflow from the ComfyUI frontend's workflow library in headless Chromium, runs it on a
// chosen checkpoint and prints a JSON summary (console errors, the generated image, screenshot).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

const USAGE =
  'usage: node run_library_workflow.mjs --url URL --workflow NAME --checkpoint NAME ' +
  '--artifacts DIR [--chromium PATH]';
// The machines these tests run on can be slow and busy: patient waits for every UI step.
const UI_TIMEOUT_MS = 60_000;
const IMAGE_TIMEOUT_MS = 150_000;

function readOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      workflow: { type: 'string' },
      checkpoint: { type: 'string' },
      artifacts: { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  });
  for (const name of ['url', 'workflow', 'checkpoint', 'artifacts']) {
    if (!values[name]) throw new Error(`missing --${name}\n${USAGE}`);
  }
  return values;
}

// Console errors (with the resource URL: "Failed to load resource" names none), uncaught page
// errors, and every /view response by URL.
function watchPage(page) {
  const seen = { consoleErrors: [], pageErrors: [], viewResponses: new Map() };
  page.on('console', (message) => {
    if (message.type() === 'error') {
      seen.consoleErrors.push({ text: message.text(), url: message.location().url });
    }
  });
  page.on('pageerror', (error) => seen.pageErrors.push(String(error.stack || error)));
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.endsWith('/view')) {
      seen.viewResponses.set(response.url(), {
        status: response.status(),
        content_type: response.headers()['content-type'] ?? null,
      });
    }
  });
  return seen;
}

// A new user gets the template browser on first start; close it whenever it shows up.
async function dismissFirstRunDialogs(page) {
  const templates = page.getByRole('dialog').filter({ hasText: 'Templates' });
  await page.addLocatorHandler(templates, async () => {
    await templates.getByRole('button', { name: 'Close dialog' }).click();
  });
}

async function waitForFrontend(page, url) {
  await page.goto(url);
  await page.waitForFunction(() => window.app?.graph);
  await page.getByRole('button', { name: 'Run', exact: true }).waitFor();
}

async function openFromWorkflowLibrary(page, name) {
  const sidebarButton = page.getByRole('button', { name: /^Workflows/ });
  await sidebarButton.click();
  await page.getByText(name, { exact: true }).click();
  await page.waitForFunction(() =>
    window.app.graph.nodes.some((node) => node.type === 'CheckpointLoaderSimple'),
  );
  await sidebarButton.click();
}

// Where the checkpoint loader's ckpt_name combo is drawn on the page, after centering the node.
async function checkpointWidgetPoint(page) {
  return page.evaluate(() => {
    const canvas = window.app.canvas;
    const node = window.app.graph.nodes.find((n) => n.type === 'CheckpointLoaderSimple');
    const widget = node.widgets.find((w) => w.name === 'ckpt_name');
    canvas.centerOnNode(node);
    canvas.setDirty(true, true);
    const widgetHeight = window.LiteGraph?.NODE_WIDGET_HEIGHT ?? 20;
    const [x, y] = canvas.ds.convertOffsetToCanvas([
      node.pos[0] + node.size[0] / 2,
      node.pos[1] + widget.y + widgetHeight / 2,
    ]);
    const box = canvas.canvas.getBoundingClientRect();
    return { x: box.left + x, y: box.top + y };
  });
}

// Clicks the combo on the canvas and picks the checkpoint from the menu it opens.
async function chooseCheckpoint(page, checkpoint) {
  const point = await checkpointWidgetPoint(page);
  await page.mouse.click(point.x, point.y);
  await page.locator('.litecontextmenu .litemenu-entry', { hasText: checkpoint }).first().click();
  const chosen = await page.evaluate(
    () =>
      window.app.graph.nodes
        .find((n) => n.type === 'CheckpointLoaderSimple')
        .widgets.find((w) => w.name === 'ckpt_name').value,
  );
  if (chosen !== checkpoint) {
    throw new Error(`ckpt_name is "${chosen}" after choosing "${checkpoint}" from its menu`);
  }
}

async function queueWithRunButton(page) {
  const [response] = await Promise.all([
    page.waitForResponse(
      (r) => new URL(r.url()).pathname.endsWith('/prompt') && r.request().method() === 'POST',
    ),
    page.getByRole('button', { name: 'Run', exact: true }).click(),
  ]);
  if (!response.ok()) {
    throw new Error(`POST /prompt answered ${response.status()}: ${await response.text()}`);
  }
  return (await response.json()).prompt_id;
}

// The first output image of this server's /view that the page has finished loading.
async function waitForGeneratedImage(page) {
  const handle = await page.waitForFunction(
    () => {
      const loaded = [...document.images].find((image) => {
        const src = new URL(image.src, location.href);
        return (
          image.complete &&
          image.naturalWidth > 0 &&
          src.origin === location.origin &&
          src.pathname.endsWith('/view') &&
          src.searchParams.get('type') === 'output'
        );
      });
      return (
        loaded && { src: loaded.src, width: loaded.naturalWidth, height: loaded.naturalHeight }
      );
    },
    null,
    { timeout: IMAGE_TIMEOUT_MS, polling: 250 },
  );
  return handle.jsonValue();
}

async function screenshotWholeGraph(page, path) {
  await page.getByRole('button', { name: /^Fit View/ }).click();
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  await page.screenshot({ path });
  return path;
}

async function runWorkflow(page, options, seen, summary) {
  await dismissFirstRunDialogs(page);
  await waitForFrontend(page, options.url);
  await openFromWorkflowLibrary(page, options.workflow);
  await chooseCheckpoint(page, options.checkpoint);
  summary.prompt_id = await queueWithRunButton(page);
  const image = await waitForGeneratedImage(page);
  summary.image = { ...image, response: seen.viewResponses.get(image.src) ?? null };
  summary.screenshot = await screenshotWholeGraph(
    page,
    join(options.artifacts, `${options.workflow}.png`),
  );
}

async function main() {
  const options = readOptions();
  mkdirSync(options.artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: options.chromium, headless: true });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const seen = watchPage(page);
  const summary = { browser: `chromium ${browser.version()}`, workflow: options.workflow };
  try {
    await runWorkflow(page, options, seen, summary);
  } catch (error) {
    summary.error = String(error.stack || error);
    summary.screenshot = join(options.artifacts, `${options.workflow}-failure.png`);
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
