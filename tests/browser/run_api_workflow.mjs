// Opens an API-format workflow file in the ComfyUI frontend in headless Chromium the way a user
// does (the Open dialog's file input), runs it with the Run button and prints a JSON summary:
// the nodes it put on the canvas, console errors, the SaveImage preview, screenshot.
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';

import { runOnPage } from './browser_page.mjs';
import {
  dismissFirstRunDialogs,
  queueWithRunButton,
  screenshot,
  timed,
  waitForFrontend,
  waitForSaveImagePreview,
  watchViewResponses,
} from './frontend_steps.mjs';

const USAGE =
  'usage: node run_api_workflow.mjs --url URL --file WORKFLOW.json --artifacts DIR ' +
  '[--chromium PATH]';

function readOptions() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      file: { type: 'string' },
      artifacts: { type: 'string' },
      chromium: { type: 'string', default: '/usr/bin/chromium' },
    },
  });
  for (const name of ['url', 'file', 'artifacts']) {
    if (!values[name]) throw new Error(`missing --${name}\n${USAGE}`);
  }
  return values;
}

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
  const options = readOptions();
  const name = basename(options.file, '.json');
  const fields = { workflow: name, seconds: {} };
  await runOnPage(options, fields, `${name}-failure.png`, async (page, seen, summary) => {
    watchViewResponses(page, seen);
    await dismissFirstRunDialogs(page);
    await timed(summary, 'load_frontend', () => waitForFrontend(page, options.url));
    await timed(summary, 'open_workflow', () => openWorkflowFile(page, options.file));
    summary.nodes = await canvasNodeTypes(page);
    summary.prompt_id = await queueWithRunButton(page);
    const image = await timed(summary, 'run', () => waitForSaveImagePreview(page));
    summary.image = { ...image, response: seen.viewResponses.get(image.src) ?? null };
    summary.screenshot = await screenshot(page, join(options.artifacts, `${name}.png`));
  });
}

await main();
