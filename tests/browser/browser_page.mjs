// One headless Chromium page for the browser scripts: it records the page's errors, runs a script's
// steps and prints the script's JSON summary with them (and a screenshot when a step fails).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { chromium } from 'playwright-core';

// The script's --name VALUE options: `required` and `optional` names, and --chromium (default
// /usr/bin/chromium); throws with `usage` when a required one is missing.
export function readOptions(required, optional, usage) {
  const options = { chromium: { type: 'string', default: '/usr/bin/chromium' } };
  for (const name of [...required, ...optional]) options[name] = { type: 'string' };
  const { values } = parseArgs({ options });
  for (const name of required) {
    if (!values[name]) throw new Error(`missing --${name}\n${usage}`);
  }
  return values;
}

// The machines these tests run on can be slow and busy: patient waits for every UI step.
const UI_TIMEOUT_MS = 60_000;

// Console errors (with the resource URL: "Failed to load resource" names none) and uncaught page
// errors, recorded as they happen.
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

// Runs `steps(page, seen, summary)` on a fresh 1600x1000 page of options.chromium and prints the
// summary (the browser, `fields`, what the steps add, the page's errors) as JSON; when a step fails
// it holds the error and a screenshot `failureName` in options.artifacts, and the exit code is 1.
export async function runOnPage(options, fields, failureName, steps) {
  mkdirSync(options.artifacts, { recursive: true });
  const browser = await chromium.launch({ executablePath: options.chromium, headless: true });
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  page.setDefaultTimeout(UI_TIMEOUT_MS);
  const seen = watchPage(page);
  const summary = { browser: `chromium ${browser.version()}`, ...fields };
  try {
    await steps(page, seen, summary);
  } catch (error) {
    summary.error = String(error.stack || error);
    summary.screenshot = join(options.artifacts, failureName);
    await page.screenshot({ path: summary.screenshot });
  } finally {
    summary.console_errors = seen.consoleErrors;
    summary.page_errors = seen.pageErrors;
    await browser.close();
  }
  console.log(JSON.stringify(summary));
  process.exitCode = summary.error ? 1 : 0;
}
