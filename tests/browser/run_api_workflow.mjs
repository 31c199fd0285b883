// Opens an API-format workflow file in the ComfyUI frontend in headless Chromium the way a user
// does (the Open dialog's file input), runs it with the Run button and prints a JSON summary:
// the nodes it put on the canvas, console errors, the SaveImage preview, screenshot.
import { basename, join } from 'node:path';

import { readOptions, runOnPage } from './browser_page.mjs';
import { openFrontend, runAndShowImage, timed, watchViewResponses } from './frontend_steps.mjs';

const USAGE =
  'usage: node run_api_workflow.mjs --url URL --file WORKFLOW.json --artifacts DIR ' +
  '[--chromium PATH]';

// Hands the file to the frontend's workflow file input (what Workflow > Open uses) and waits for
// the canvas to hold a SaveImage node.
async function openWorkflowFile(page, file) {
  await page.locator('#comfy-file-input').setInputFiles(file);
  await page.waitForFunction(() => window.app.graph.nodes.some((node) => node.type === 'SaveImage'));
}

function canvasNodeTypes(page) {
  return page.evaluate(() => window.app.graph.nodes.map((node) => node.type));
}

async function main() {
  const options = readOptions(['url', 'file', 'artifacts'], [], USAGE);
  const name = basename(options.file, '.json');
  const fields = { workflow: name, seconds: {} };
  await runOnPage(options, fields, `${name}-failure.png`, async (page, seen, summary) => {
    watchViewResponses(page, seen);
    await openFrontend(page, options.url, summary);
    await timed(summary, 'open_workflow', () => openWorkflowFile(page, options.file));
    summary.nodes = await canvasNodeTypes(page);
    await runAndShowImage(page, seen, summary, join(options.artifacts, `${name}.png`));
  });
}

await main();
