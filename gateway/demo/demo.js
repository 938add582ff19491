// imageserve demo page (/demo): calls this origin's API with a key pasted by the user.
// Plain JavaScript, no framework, no build step, nothing from another origin (the CSP forbids it anyway).
// The key lives in `apiKey` only: never in cookies, localStorage or the URL. Everything shown comes from the
// API and is written with textContent (never innerHTML); images are shown from URL.createObjectURL(blob).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const el = {
    key: $("key"), forgetKey: $("forget-key"), drop: $("drop"), photo: $("photo"), model: $("model"),
    maxSide: $("max-side"), analyse: $("analyse"), status: $("status"), error: $("error"),
    errorTitle: $("error-title"), errorMessage: $("error-message"), errorRequestId: $("error-request-id"),
    photoImg: $("photo-img"), focusMark: $("focus-mark"), focusText: $("focus-text"),
    aperture: $("aperture"), apertureValue: $("aperture-value"), bokehRun: $("bokeh-run"),
    bgColor: $("bg-color"), backgroundRun: $("background-run"), aspect: $("aspect"), cropRun: $("crop-run"),
    cropBox: $("crop-box"), log: document.querySelector("#call-log tbody"), style: $("style"),
    strength: $("strength"), strengthValue: $("strength-value"), keepPerson: $("keep-person"),
    styleImage: $("style-image"),
    styleRun: $("style-run"), upscaleRun: $("upscale-run"), selectRun: $("select-run"), eraseRun: $("erase-run"),
    selected: $("selected"),
  };
  const ACTIONS = [el.analyse, el.bokehRun, el.backgroundRun, el.cropRun, el.styleRun, el.upscaleRun];

  let apiKey = "";      // the pasted key, in memory only
  let photo = null;     // the chosen File
  let focus = null;     // {x, y} in pixels of the upright photo, or null: on the subject
  const objectUrls = new Map();  // <img> id -> the object URL it shows (revoked when replaced)
  const latest = new Map();      // operation -> number of its newest call (older answers are not shown)
  let calls = 0;
  let selection = null;  // the newest /v1/select mask (a Blob), what "Erase the selection" sends

  function setImage(img, blob) {
    const old = objectUrls.get(img.id);
    if (old) URL.revokeObjectURL(old);
    const url = URL.createObjectURL(blob);
    objectUrls.set(img.id, url);
    img.src = url;
  }

  function setStatus(text) { el.status.textContent = text; }

  function clearError() {
    el.error.hidden = true;
    el.errorTitle.textContent = "";
    el.errorMessage.textContent = "";
    el.errorRequestId.textContent = "";
  }

  function showError(title, message, requestId) {
    el.errorTitle.textContent = title;
    el.errorMessage.textContent = message;
    el.errorRequestId.textContent = requestId ? `request id ${requestId}` : "";
    el.error.hidden = false;
  }

  function updateButtons() {
    const ready = apiKey !== "" && photo !== null;
    for (const button of ACTIONS) button.disabled = !ready;
    el.selectRun.disabled = !ready || focus === null;
    el.eraseRun.disabled = !ready || selection === null;
  }

  function logCall(entry) {
    const row = document.createElement("tr");
    row.dataset.operation = entry.operation;
    row.dataset.requestId = entry.requestId;
    const cells = [entry.operation, String(entry.status), entry.charged, entry.remaining, entry.requestId,
      `${entry.ms} ms`];
    const names = ["operation", "status", "charged", "remaining", "request-id", "time"];
    cells.forEach((text, i) => {
      const cell = document.createElement("td");
      cell.className = names[i];
      cell.textContent = text;
      row.append(cell);
    });
    el.log.prepend(row);
  }

  function describe(entry) {
    return `${entry.charged} credits charged, ${entry.remaining} remaining, request id ${entry.requestId}, ` +
      `${entry.ms} ms`;
  }

  // An API error body is {"error": {"code", "message", "request_id"}}; anything else (a proxy's page) is shown as
  // its status and the start of its text.
  async function readError(response, requestId) {
    const text = await response.text();
    try {
      const body = JSON.parse(text);
      if (body && body.error && typeof body.error.code === "string") {
        return { code: body.error.code, message: String(body.error.message ?? ""),
          requestId: String(body.error.request_id ?? requestId) };
      }
    } catch (_) { /* not JSON: fall through */ }
    return { code: "http_error", message: text.slice(0, 300) || response.statusText, requestId };
  }

  // One API call: the photo as the multipart field `image` (and `parts`, name -> Blob), the parameters in the
  // query string.
  async function call(operation, params, parts = {}) {
    const number = ++calls;
    latest.set(operation, number);
    const query = new URLSearchParams({ model: el.model.value, max_side: el.maxSide.value, ...params });
    const form = new FormData();
    form.append("image", photo, "photo");  // the file's own name is not sent
    for (const [name, blob] of Object.entries(parts)) form.append(name, blob, name);
    const started = performance.now();
    let response;
    try {
      response = await fetch(`/v1/${operation}?${query}`, {
        method: "POST", body: form, headers: { Authorization: `Bearer ${apiKey}` },
        credentials: "omit", cache: "no-store", referrerPolicy: "no-referrer",
      });
    } catch (err) {
      showError(`${operation}: no answer`, `the request did not reach the server (${err.message})`, "");
      throw err;
    }
    const header = (name) => response.headers.get(name) ?? "–";
    const entry = { operation, status: response.status, charged: header("X-Credits-Charged"),
      remaining: header("X-Credits-Remaining"), requestId: header("X-Request-Id") };
    const body = response.ok ? await response.blob() : null;
    entry.ms = Math.round(performance.now() - started);
    logCall(entry);
    if (!response.ok) {
      const error = await readError(response, entry.requestId);
      showError(`${operation}: ${response.status} ${error.code}`, error.message, error.requestId);
      throw new Error(error.code);
    }
    return { blob: body, headers: response.headers, entry, current: latest.get(operation) === number };
  }

  async function show(operation, params, onResult, parts = {}) {
    clearError();
    setStatus(`${operation}…`);
    try {
      const result = await call(operation, params, parts);
      if (!result.current) return;  // a newer call of this operation was made meanwhile
      setImage($(`${operation}-img`), result.blob);
      $(`${operation}-meta`).textContent = describe(result.entry);
      if (onResult) onResult(result);
      setStatus(`${operation} done`);
    } catch (_) {
      setStatus(`${operation} failed`);
      throw _;
    }
  }

  async function analyse() {
    if (!apiKey || !photo) return;
    try {
      for (const operation of ["depth", "mask", "cutout"]) await show(operation, {});
      setStatus("depth, matte and cutout done: tap the photo for bokeh, or try the edits");
    } catch (_) { /* shown in #error */ }
  }

  function bokeh() {
    const params = { aperture: el.aperture.value };
    if (focus) Object.assign(params, { focus_x: String(focus.x), focus_y: String(focus.y) });
    show("bokeh", params).catch(() => {});
  }

  function background() {
    show("background", { color: el.bgColor.value.replace("#", "") }).catch(() => {});
  }

  function crop() {
    show("crop", { aspect: el.aspect.value }, (result) => {
      el.cropBox.textContent = result.headers.get("X-Crop-Box") ?? "–";
    }).catch(() => {});
  }

  // A built-in style, or the chosen picture's style (the `style_image` part; then no `style`).
  function style() {
    const picture = el.styleImage.files[0];
    const params = picture ? { strength: el.strength.value } : { style: el.style.value, strength: el.strength.value };
    if (el.keepPerson.checked) params.keep = "person";
    show("style", params, null, picture ? { style_image: picture } : {}).catch(() => {});
  }

  function upscale() {
    show("upscale", { model: "fast", scale: "2" }).catch(() => {});
  }

  // The mask of what is under the clicked point (pixels of the upright photo, as for the bokeh's focus).
  function select() {
    if (!focus) return;
    show("select", { x: String(focus.x), y: String(focus.y) }, (result) => {
      selection = result.blob;
      el.selected.textContent = result.headers.get("X-Selected") ?? "–";
      updateButtons();
    }).catch(() => {});
  }

  // Object removal of the selection: the select answer sent back as erase's `mask` part (a tap, two calls).
  function erase() {
    if (selection) show("erase", {}, null, { mask: selection }).catch(() => {});
  }

  // The style names as the service declares them (its OpenAPI document), not a second list here.
  async function loadStyles() {
    try {
      const spec = await (await fetch("/openapi.json", { credentials: "omit", cache: "no-store" })).json();
      const param = spec.paths["/v1/style"].post.parameters.find((p) => p.name === "style");
      const schema = param.schema.anyOf ? param.schema.anyOf.find((s) => s.enum) : param.schema;
      for (const name of schema.enum) {
        const option = document.createElement("option");
        option.value = name;
        option.textContent = name;
        option.selected = name === param.schema.default;
        el.style.append(option);
      }
    } catch (err) {
      showError("styles", `the style names could not be read from /openapi.json (${err.message})`, "");
    }
  }

  function choose(file) {
    if (!file) return;
    photo = file;
    focus = null;
    selection = null;
    el.selected.textContent = "–";
    el.focusMark.hidden = true;
    el.focusText.textContent = "on the subject (click the photo to choose a point)";
    setImage(el.photoImg, file);
    updateButtons();
    if (apiKey) analyse();
    else setStatus("paste an API key above, then press “Depth, matte and cutout”");
  }

  // A click on the shown photo: its position scaled to pixels of the upright photo (the <img> shows the photo
  // upright, EXIF orientation applied, at clientWidth x clientHeight of naturalWidth x naturalHeight).
  function focusAt(event) {
    const img = el.photoImg;
    if (!photo || !img.naturalWidth || !img.clientWidth) return;
    const clamp = (v, n) => Math.min(n - 1, Math.max(0, Math.round(v)));
    const x = clamp(event.offsetX * img.naturalWidth / img.clientWidth, img.naturalWidth);
    const y = clamp(event.offsetY * img.naturalHeight / img.clientHeight, img.naturalHeight);
    focus = { x, y };
    el.focusMark.style.left = `${(100 * x) / img.naturalWidth}%`;
    el.focusMark.style.top = `${(100 * y) / img.naturalHeight}%`;
    el.focusMark.hidden = false;
    el.focusText.textContent = `x ${x}, y ${y} (pixels of the photo)`;
    updateButtons();
    if (apiKey) bokeh();
  }

  el.key.addEventListener("input", () => {
    apiKey = el.key.value.trim();
    updateButtons();
  });
  el.forgetKey.addEventListener("click", () => {
    apiKey = "";
    el.key.value = "";
    updateButtons();
  });
  el.photo.addEventListener("change", () => choose(el.photo.files[0]));
  for (const name of ["dragenter", "dragover"]) {
    el.drop.addEventListener(name, (event) => { event.preventDefault(); el.drop.classList.add("over"); });
  }
  el.drop.addEventListener("dragleave", () => el.drop.classList.remove("over"));
  el.drop.addEventListener("drop", (event) => {
    event.preventDefault();
    el.drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  // A photo dropped beside the drop zone must not make the browser navigate away (and lose the key).
  for (const name of ["dragover", "drop"]) window.addEventListener(name, (event) => event.preventDefault());
  el.analyse.addEventListener("click", analyse);
  el.photoImg.addEventListener("click", focusAt);
  el.aperture.addEventListener("input", () => { el.apertureValue.textContent = el.aperture.value; });
  el.aperture.addEventListener("change", () => { if (apiKey && photo) bokeh(); });
  el.bokehRun.addEventListener("click", bokeh);
  el.bgColor.addEventListener("change", () => { if (apiKey && photo) background(); });
  el.backgroundRun.addEventListener("click", background);
  el.aspect.addEventListener("change", () => { if (apiKey && photo) crop(); });
  el.cropRun.addEventListener("click", crop);
  el.strength.addEventListener("input", () => { el.strengthValue.textContent = el.strength.value; });
  el.styleRun.addEventListener("click", style);
  el.style.addEventListener("change", () => {
    el.styleImage.value = "";  // a built-in style chosen: the picture's style no longer applies
    if (apiKey && photo) style();
  });
  el.styleImage.addEventListener("change", () => {
    if (!el.styleImage.files[0]) return;
    el.style.selectedIndex = -1;  // no built-in style is shown as chosen while the picture's style applies
    if (apiKey && photo) style();
  });
  el.upscaleRun.addEventListener("click", upscale);
  el.selectRun.addEventListener("click", select);
  el.eraseRun.addEventListener("click", erase);
  loadStyles();
  el.photoImg.addEventListener("error", () => {
    if (photo) setStatus("this browser cannot show the photo; the API may still read it");
  });
  el.key.value = "";  // a key the browser restored into the field after a reload is not used silently
  updateButtons();
})();
