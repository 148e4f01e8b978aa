// The web page in headless Chromium, against a running service:
//   node test.mjs BASE_URL KEY ENROLL_PHOTO SAME_PERSON_PHOTO STRANGER_PHOTO [CAMERA_MJPEG SAME_AS_CAMERA_PHOTO]
// Enrolls a person from one photo (upload), identifies a second photo of them and expects their
// name on the page, then a stranger and expects "not recognized". With a camera file, a second
// person is enrolled from the (fake) webcam and identified too. Finally the people list removes
// someone. Exit status 0 when all of it is seen on the page.
import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const [base, key, enrollPhoto, samePhoto, strangerPhoto, cameraFile, cameraSame] = process.argv.slice(2);
if (!strangerPhoto) {
  console.error("usage: node test.mjs BASE_URL KEY ENROLL_PHOTO SAME_PERSON_PHOTO STRANGER_PHOTO [CAMERA_MJPEG SAME_AS_CAMERA_PHOTO]");
  process.exit(2);
}
const executablePath = process.env.VISAGE_TEST_CHROMIUM || "/usr/bin/chromium";
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "visage-chromium-"));
const args = [
  "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
  "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
];
if (cameraFile) args.push(`--use-file-for-fake-video-capture=${cameraFile}`);

const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath, headless: true, args, viewport: { width: 390, height: 844 }, timeout: 60000,
});
const page = context.pages()[0] || (await context.newPage());
page.setDefaultTimeout(60000);
page.on("dialog", (d) => d.accept());
const step = (s) => console.log("browser: " + s);
let status = 0;
try {
  await page.goto(base + "/");
  await page.fill("#key", key);

  step("enroll Person One from " + path.basename(enrollPhoto));
  await page.click("nav button[data-tab=enroll]");
  await page.fill("#enroll-name", "Person One");
  await page.setInputFiles("#enroll-file", enrollPhoto);
  await page.click("#enroll-go");
  await page.waitForFunction(() => /enrolled Person One/.test(document.querySelector("#enroll-status").textContent) || document.querySelector("#error").textContent);
  const enrolled = await page.textContent("#enroll-status");
  if (!/enrolled Person One/.test(enrolled)) throw new Error("enrolment failed: " + (await page.textContent("#error")));

  const identify = async (photo) => {
    await page.click("nav button[data-tab=identify]");
    await page.setInputFiles("#identify-file", photo);
    await page.evaluate(() => { document.querySelector("#identify-result").textContent = ""; });
    await page.click("#identify-go");
    await page.waitForFunction(() => {
      const t = document.querySelector("#identify-result").textContent;
      return (t && t !== "…") || document.querySelector("#error").textContent;
    });
    const error = await page.textContent("#error");
    if (error) throw new Error("identify failed: " + error);
    return page.textContent("#identify-result");
  };

  step("identify " + path.basename(samePhoto));
  let seen = await identify(samePhoto);
  const width = await page.evaluate(() => document.querySelector("#identify-canvas").width);
  if (!/Person One/.test(seen) || width === 0) throw new Error(`expected Person One boxed on the picture, saw ${JSON.stringify(seen)} (canvas width ${width})`);
  step("seen: " + seen);

  step("identify the stranger " + path.basename(strangerPhoto));
  seen = await identify(strangerPhoto);
  if (!/not recognized/.test(seen) || /Person One/.test(seen)) throw new Error(`expected "not recognized", saw ${JSON.stringify(seen)}`);
  step("seen: " + seen);

  if (cameraFile) {
    step("enroll Person Two from the webcam");
    await page.click("nav button[data-tab=enroll]");
    await page.fill("#enroll-name", "Person Two");
    await page.setInputFiles("#enroll-file", []);
    await page.click(".source[data-target=enroll] .camera");
    await page.waitForFunction(() => document.querySelector("#camera-video").videoWidth > 0);
    await page.click("#camera-snap");
    await page.waitForFunction(() => document.querySelector("#camera").hidden);
    await page.click("#enroll-go");
    await page.waitForFunction(() => /enrolled Person Two/.test(document.querySelector("#enroll-status").textContent) || document.querySelector("#error").textContent);
    const e = await page.textContent("#error");
    if (e) throw new Error("webcam enrolment failed: " + e);
    step("identify " + path.basename(cameraSame));
    seen = await identify(cameraSame);
    if (!/Person Two/.test(seen)) throw new Error(`expected Person Two, saw ${JSON.stringify(seen)}`);
    step("seen: " + seen);
  }

  step("remove Person One from the people list");
  await page.click("nav button[data-tab=people]");
  await page.waitForSelector("#people-list li");
  const row = page.locator("#people-list li", { hasText: "Person One" });
  await row.locator("button").click();
  await page.waitForFunction(() => !/Person One/.test(document.querySelector("#people-list").textContent));
  step("ok");
} catch (e) {
  console.error("browser test failed: " + e.message);
  console.error("page text: " + (await page.textContent("body").catch(() => "?")));
  status = 1;
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.exit(status);
