// Opens a workflow from the ComfyUI frontend's workflow library in headless Chromium, picks its
// checkpoint (and image size), runs it and prints a JSON summary: console errors, image, screenshot.
import { join } from 'node:path';

import { readOptions, runOnPage } from './browser_page.mjs';
import { openFrontend, runAndShowImage, timed, watchViewResponses } from './frontend_steps.mjs';

const USAGE =
  'usage: node run_library_workflow.mjs --url URL --workflow NAME --checkpoint NAME ' +
  '--artifacts DIR [--image-size PIXELS] [--chromium PATH]';

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

async function runWorkflow(page, options, seen, summary) {
  await openFrontend(page, options.url, summary);
  await timed(summary, 'open_workflow', () => openFromWorkflowLibrary(page, options.workflow));
  await timed(summary, 'set_inputs', async () => {
    await chooseComboValue(page, 'CheckpointLoaderSimple', 'ckpt_name', options.checkpoint);
    if (options['image-size']) {
      const size = Number(options['image-size']);
      await enterNumber(page, 'EmptyLatentImage', 'width', size);
      await enterNumber(page, 'EmptyLatentImage', 'height', size);
    }
  });
  await runAndShowImage(page, seen, summary, join(options.artifacts, `${options.workflow}.png`));
}

async function main() {
  const options = readOptions(['url', 'workflow', 'checkpoint', 'artifacts'], ['image-size'], USAGE);
  const fields = { workflow: options.workflow, seconds: {} };
  await runOnPage(options, fields, `${options.workflow}-failure.png`, async (page, seen, summary) => {
    watchViewResponses(page, seen);
    await runWorkflow(page, options, seen, summary);
  });
}

await main();
