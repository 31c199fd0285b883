// Opens a workflow from the ComfyUI frontend's workflow library in headless Chromium, picks its
// checkpoint (and image size), runs it and prints a JSON summary: console errors, image, screenshot.
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { runOnPage } from './browser_page.mjs';

const USAGE =
  'usage: node run_library_workflow.mjs --url URL --workflow NAME --checkpoint NAME ' +
  '--artifacts DIR [--image-size PIXELS] [--chromium PATH]';
const IMAGE_TIMEOUT_MS = 150_000;

function readOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      workflow: { type: 'string' },
      checkpoint: { type: 'string' },
      artifacts: { type: 'string' },
      'image-size': { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  });
  for (const name of ['url', 'workflow', 'checkpoint', 'artifacts']) {
    if (!values[name]) throw new Error(`missing --${name}\n${USAGE}`);
  }
  return values;
}

// Every /view response of the page by URL, recorded in seen.viewResponses.
function watchViewResponses(page, seen) {
  seen.viewResponses = new Map();
  page.on('response', (response) => {
    if (new URL(response.url()).pathname.endsWith('/view')) {
      seen.viewResponses.set(response.url(), {
        status: response.status(),
        content_type: response.headers()['content-type'] ?? null,
      });
    }
  });
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

// Where a node's widget is drawn on the page, after centering the node on the canvas.
async function widgetPoint(page, nodeType, widgetName) {
  return page.evaluate(
    ([type, name]) => {
      const canvas = window.app.canvas;
      const node = window.app.graph.nodes.find((n) => n.type === type);
      const widget = node.widgets.find((w) => w.name === name);
      canvas.centerOnNode(node);
      canvas.setDirty(true, true);
      const [x, y] = canvas.ds.convertOffsetToCanvas([
        node.pos[0] + node.size[0] / 2,
        node.pos[1] + widget.y + window.LiteGraph.NODE_WIDGET_HEIGHT / 2,
      ]);
      const box = canvas.canvas.getBoundingClientRect();
      return { x: box.left + x, y: box.top + y };
    },
    [nodeType, widgetName],
  );
}

async function expectWidgetValue(page, nodeType, widgetName, expected) {
  const value = await page.evaluate(
    ([type, name]) =>
      window.app.graph.nodes.find((n) => n.type === type).widgets.find((w) => w.name === name)
        .value,
    [nodeType, widgetName],
  );
  if (value !== expected) {
    throw new Error(`${nodeType}.${widgetName} is ${JSON.stringify(value)}, not ${expected}`);
  }
}

// Clicks a combo widget on the canvas and picks the value from the menu it opens.
async function chooseComboValue(page, nodeType, widgetName, value) {
  const point = await widgetPoint(page, nodeType, widgetName);
  await page.mouse.click(point.x, point.y);
  await page.locator('.litecontextmenu .litemenu-entry', { hasText: value }).first().click();
  await expectWidgetValue(page, nodeType, widgetName, value);
}

// Clicks a number widget on the canvas and types the value into the prompt it opens.
async function enterNumber(page, nodeType, widgetName, value) {
  const point = await widgetPoint(page, nodeType, widgetName);
  await page.mouse.click(point.x, point.y);
  const input = page.locator('.graphdialog input');
  await input.fill(String(value));
  await input.press('Enter');
  await expectWidgetValue(page, nodeType, widgetName, value);
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

// The SaveImage node's preview on the canvas, once the frontend has loaded it (it loads the images
// of the nodes it draws, so the whole graph is brought into view first).
async function waitForSaveImagePreview(page) {
  await page.getByRole('button', { name: /^Fit View/ }).click();
  const handle = await page.waitForFunction(
    () => {
      const image = window.app.graph.nodes.find((n) => n.type === 'SaveImage')?.imgs?.[0];
      if (!image?.complete || image.naturalWidth === 0) return null;
      return { src: image.src, width: image.naturalWidth, height: image.naturalHeight };
    },
    null,
    { timeout: IMAGE_TIMEOUT_MS, polling: 250 },
  );
  return handle.jsonValue();
}

async function screenshot(page, path) {
  await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => resolve())));
  await page.screenshot({ path });
  return path;
}

// Runs one step, recording in the summary how many seconds it took.
async function timed(summary, name, action) {
  const started = performance.now();
  const result = await action();
  summary.seconds[name] = Math.round((performance.now() - started) / 100) / 10;
  return result;
}

async function runWorkflow(page, options, seen, summary) {
  await dismissFirstRunDialogs(page);
  await timed(summary, 'load_frontend', () => waitForFrontend(page, options.url));
  await timed(summary, 'open_workflow', () => openFromWorkflowLibrary(page, options.workflow));
  await timed(summary, 'set_inputs', async () => {
    await chooseComboValue(page, 'CheckpointLoaderSimple', 'ckpt_name', options.checkpoint);
    if (options['image-size']) {
      const size = Number(options['image-size']);
      await enterNumber(page, 'EmptyLatentImage', 'width', size);
      await enterNumber(page, 'EmptyLatentImage', 'height', size);
    }
  });
  summary.prompt_id = await queueWithRunButton(page);
  const image = await timed(summary, 'run', () => waitForSaveImagePreview(page));
  summary.image = { ...image, response: seen.viewResponses.get(image.src) ?? null };
  summary.screenshot = await screenshot(page, join(options.artifacts, `${options.workflow}.png`));
}

async function main() {
  const options = readOptions();
  const fields = { workflow: options.workflow, seconds: {} };
  await runOnPage(options, fields, `${options.workflow}-failure.png`, async (page, seen, summary) => {
    watchViewResponses(page, seen);
    await runWorkflow(page, options, seen, summary);
  });
}

await main();
