// Steps on the ComfyUI frontend shared by the browser scripts: loading it, queueing with the Run
// button, waiting for the SaveImage preview, recording /view responses and screenshots.

// The machines these tests run on can be slow: generous time for a prompt to finish.
const IMAGE_TIMEOUT_MS = 150_000;

// Every /view response of the page by URL, recorded in seen.viewResponses.
export function watchViewResponses(page, seen) {
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

// Loads the frontend as a new user (first-run dialogs closed as they show up), timed.
export async function openFrontend(page, url, summary) {
  await dismissFirstRunDialogs(page);
  await timed(summary, 'load_frontend', () => waitForFrontend(page, url));
}

// Clicks Run; resolves to the prompt id of the POST /prompt it sends (throws if it is refused).
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
export async function timed(summary, name, action) {
  const started = performance.now();
  const result = await action();
  summary.seconds[name] = Math.round((performance.now() - started) / 100) / 10;
  return result;
}

// Runs the canvas's graph with the Run button and waits for its SaveImage preview: the summary gets
// the prompt id, the image (with its /view response) and a screenshot at `screenshotPath`.
export async function runAndShowImage(page, seen, summary, screenshotPath) {
  summary.prompt_id = await queueWithRunButton(page);
  const image = await timed(summary, 'run', () => waitForSaveImagePreview(page));
  summary.image = { ...image, response: seen.viewResponses.get(image.src) ?? null };
  summary.screenshot = await screenshot(page, screenshotPath);
}
