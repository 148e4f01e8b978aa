// Visage's web page: calls the JSON API under /api/v1 with the key typed in the header.
"use strict";

const $ = (id) => document.getElementById(id);
const keyInput = $("key");
keyInput.value = localStorage.getItem("visage-key") || "";
keyInput.addEventListener("change", () => localStorage.setItem("visage-key", keyInput.value.trim()));

// Photos taken with the camera, by target; they replace the file input's choice.
const captured = {};

function showError(message) { $("error").textContent = message || ""; }

async function call(method, path, body) {
  showError("");
  const headers = { "Authorization": "Bearer " + keyInput.value.trim() };
  if (body && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const response = await fetch("/api/v1" + path, { method, headers, body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = (data.error && data.error.message) || response.statusText;
    throw new Error(response.status + ": " + message);
  }
  return data;
}

function chosen(target, input) {
  if (captured[target]) return [captured[target]];
  return Array.from(input.files);
}

// Draws the photo with each face boxed and labelled; returns when drawn.
async function draw(canvas, blob, faces) {
  const bitmap = await createImageBitmap(blob, { imageOrientation: "from-image" });
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(bitmap, 0, 0);
  const line = Math.max(2, Math.round(bitmap.width / 250));
  ctx.font = `${Math.max(14, Math.round(bitmap.width / 30))}px system-ui, sans-serif`;
  for (const f of faces) {
    const [l, t, r, b] = f.box;
    ctx.lineWidth = line;
    ctx.strokeStyle = f.color;
    ctx.strokeRect(l, t, r - l, b - t);
    if (f.label) {
      const h = parseInt(ctx.font, 10) + 6;
      const w = ctx.measureText(f.label).width + 8;
      ctx.fillStyle = f.color;
      ctx.fillRect(l - line / 2, Math.max(0, t - h), w, h);
      ctx.fillStyle = "#fff";
      ctx.fillText(f.label, l + 4 - line / 2, Math.max(0, t - h) + h - 6);
    }
  }
}

async function identify() {
  const files = chosen("identify", $("identify-file"));
  if (!files.length) return showError("choose a photo or take one");
  const form = new FormData();
  form.append("image", files[0], files[0].name || "camera.jpg");
  const list = $("identify-result");
  list.textContent = "…";
  try {
    const data = await call("POST", "/identify", form);
    list.textContent = "";
    if (!data.faces.length) list.innerHTML = "<li>no face found</li>";
    const faces = data.faces.map((f) => {
      const li = document.createElement("li");
      const d = f.candidates.length ? f.candidates[0].distance.toFixed(3) : "";
      li.className = f.recognized ? "known" : "unknown";
      li.textContent = f.recognized ? `${f.name} (distance ${d})` : "not recognized";
      list.appendChild(li);
      return { box: f.box, label: f.recognized ? f.name : "not recognized", color: f.recognized ? "#1a7f37" : "#b42318" };
    });
    await draw($("identify-canvas"), files[0], faces);
  } catch (e) { list.textContent = ""; showError(e.message); }
}

async function verify() {
  const a = chosen("verify-a", $("verify-a"))[0];
  const b = chosen("verify-b", $("verify-b"))[0];
  if (!a || !b) return showError("choose two photos");
  const form = new FormData();
  form.append("a", a, a.name || "a.jpg");
  form.append("b", b, b.name || "b.jpg");
  const out = $("verify-result");
  out.textContent = "…";
  try {
    const data = await call("POST", "/verify", form);
    const color = data.same_person ? "#1a7f37" : "#b42318";
    out.textContent = (data.same_person ? "same person" : "different people") +
      ` (distance ${data.distance.toFixed(3)}, threshold ${data.threshold})`;
    await draw($("verify-canvas-a"), a, [{ box: data.box_a, color }]);
    await draw($("verify-canvas-b"), b, [{ box: data.box_b, color }]);
  } catch (e) { out.textContent = ""; showError(e.message); }
}

async function enroll() {
  const name = $("enroll-name").value.trim();
  const files = chosen("enroll", $("enroll-file"));
  if (!name) return showError("type a name");
  if (!files.length) return showError("choose photos or take one");
  const form = new FormData();
  form.append("name", name);
  if ($("enroll-append").checked) form.append("append", "true");
  for (const f of files) form.append("image", f, f.name || "camera.jpg");
  const out = $("enroll-status");
  out.textContent = "…";
  try {
    const data = await call("POST", "/people", form);
    out.textContent = `${data.created ? "enrolled" : "added to"} ${data.name} (${data.templates_added} photos)`;
    delete captured.enroll;
  } catch (e) { out.textContent = ""; showError(e.message); }
}

async function people() {
  const list = $("people-list");
  try {
    const data = await call("GET", "/people");
    list.textContent = "";
    $("people-status").textContent = `${data.people.length} enrolled, τ ${data.threshold}`;
    for (const p of data.people) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = `${p.name} (${p.templates} photos)`;
      const remove = document.createElement("button");
      remove.textContent = "Remove";
      remove.addEventListener("click", async () => {
        if (!confirm(`Remove ${p.name}?`)) return;
        try { await call("DELETE", "/people/" + encodeURIComponent(p.name)); people(); }
        catch (e) { showError(e.message); }
      });
      li.append(label, remove);
      list.appendChild(li);
    }
  } catch (e) { showError(e.message); }
}

// The camera: one overlay shared by every photo source.
let cameraTarget = null;
let stream = null;
async function openCamera(target) {
  cameraTarget = target;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "user" }, audio: false });
  } catch (e) { return showError("no camera: " + e.message); }
  $("camera-video").srcObject = stream;
  $("camera").hidden = false;
}
function closeCamera() {
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("camera").hidden = true;
}
$("camera-snap").addEventListener("click", () => {
  const video = $("camera-video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => {
    captured[cameraTarget] = new File([blob], "camera.jpg", { type: "image/jpeg" });
    const source = document.querySelector(`.source[data-target="${cameraTarget}"] .camera`);
    if (source) source.textContent = "Camera ✓";
    closeCamera();
  }, "image/jpeg", 0.92);
});
$("camera-close").addEventListener("click", closeCamera);
for (const source of document.querySelectorAll(".source")) {
  const target = source.dataset.target;
  source.querySelector(".camera").addEventListener("click", () => openCamera(target));
  source.querySelector("input").addEventListener("change", (e) => {
    delete captured[target];
    source.querySelector(".camera").textContent = "Camera";
  });
}

for (const button of document.querySelectorAll("nav button")) {
  button.addEventListener("click", () => {
    for (const b of document.querySelectorAll("nav button")) b.classList.toggle("active", b === button);
    for (const s of document.querySelectorAll("main section")) s.hidden = s.id !== "tab-" + button.dataset.tab;
    if (button.dataset.tab === "people") people();
  });
}
$("identify-go").addEventListener("click", identify);
$("verify-go").addEventListener("click", verify);
$("enroll-go").addEventListener("click", enroll);
$("people-refresh").addEventListener("click", people);
