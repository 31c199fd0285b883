// Opens the ComfyUI frontend as a new user in headless Chromium, loads its default graph (Z-Image
// Turbo) and runs it as shipped with the Run button and prints a JSON summary: the graph's loaders and
// their file names, console errors, the image and a screenshot.
import { join } from 'node:path';

import { readOptions, runOnPage } from './browser_page.mjs';
import { openFrontend, runAndShowImage, watchViewResponses } from './frontend_steps.mjs';

const USAGE = 'usage: node run_default_workflow.mjs --url URL --artifacts DIR [--chromium PATH]';

// The frontend's "Load Default" workflow command (what its menu entry runs): the default graph on
// the canvas (a new user who closes the template browser gets an empty canvas).
async function loadDefaultGraph(page) {
  await page.evaluate(() => window.app.extensionManager.command.execute('Comfy.LoadDefaultWorkflow'));
  await page.waitForFunction(() => window.app.graph.nodes.some((n) => n.type === 'UNETLoader'));
}

// The node types of the canvas's graph and the file names its loaders name.
async function describeGraph(page) {
  return page.evaluate(() => {
    const nodes = window.app.graph.nodes;
    const files = {};
    for (const node of nodes) {
      for (const widget of node.widgets ?? []) {
        if (/_name$/.test(widget.name)) files[`${node.type}.${widget.name}`] = widget.value;
      }
    }
    return { node_types: nodes.map((node) => node.type).sort(), files };
  });
}

async function main() {
  const options = readOptions(['url', 'artifacts'], [], USAGE);
  await runOnPage(options, { seconds: {} }, 'default-workflow-failure.png', async (page, seen, summary) => {
    watchViewResponses(page, seen);
    await openFrontend(page, options.url, summary);
    await loadDefaultGraph(page);
    summary.graph = await describeGraph(page);
    await runAndShowImage(page, seen, summary, join(options.artifacts, 'default-workflow.png'));
  });
}

await main();
