// Screenshot a page of the MLflow UI with a headless Chromium (a check that the report run's tables and
// figures render for a user). Not part of the pipeline; needs Node.js and, in this folder or above it:
//   npm install @sparticuz/chromium puppeteer-core
// Usage (with `mlflow ui --backend-store-uri sqlite:///$PWD/mlflow.db --port 5000` running):
//   node scripts/screenshot_mlflow.mjs "http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning" runs.png [width height wait_ms]
// (without workflowType, MLflow 3.17 opens its GenAI views). --lang: under LANG=C.UTF-8 or POSIX Chromium
// reports the locale en-US@posix, which the UI rejects ("Something went wrong").
import chromium from '@sparticuz/chromium';
import puppeteer from 'puppeteer-core';

const [url, out, width = '1500', height = '1000', wait = '5000'] = process.argv.slice(2);
const browser = await puppeteer.launch({
  args: [...chromium.args, '--lang=en-US'],
  executablePath: await chromium.executablePath(),
  headless: true,
  defaultViewport: { width: Number(width), height: Number(height) },
});
const page = await browser.newPage();
await page.goto(url, { waitUntil: 'networkidle0', timeout: 60000 });
await new Promise((resolve) => setTimeout(resolve, Number(wait)));
await page.screenshot({ path: out });
await browser.close();
