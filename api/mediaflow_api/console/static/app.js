// The MediaFlow console: sign-in, uploads with progress, live jobs, results, the job list.
import { ApiError, Session } from "./api.js";
import { collectFields, loadOperations, renderFields, showFieldErrors } from "./forms.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 1000;
const PAGE_SIZE = 10;
const LIST_REFRESH_MS = 3000;
const FINAL = new Set(["completed", "failed", "cancelled", "deleted"]);
const STATUS_WORDS = {
  pending: "Waiting to start",
  processing: "Processing",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
  deleted: "Cancelled and deleted",
};

const state = {
  operations: [],
  chosen: [], // File objects picked or dropped, not yet sent
  tracked: new Map(), // job id -> {file, item, status}
  page: 1,
  total: 0,
  poller: null,
  listTimer: null,
  resultUrls: [], // object URLs of the result view, revoked when it closes
};

const session = new Session((signedIn, reason) => showView(signedIn, reason));

// ---------- helpers ----------

function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") element.textContent = value;
    else element.setAttribute(key, value);
  }
  element.append(...children);
  return element;
}

export function formatBytes(bytes) {
  if (bytes === null || bytes === undefined) return "unknown";
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function announce(message) {
  $("status").textContent = message;
}

/** Problem details in words: the detail, then each field error the form did not place. */
function showProblem(target, error, fieldset = null) {
  target.replaceChildren();
  if (!error) return;
  const problem = error instanceof ApiError ? error.problem : { detail: String(error.message) };
  const errors = fieldset ? showFieldErrors(fieldset, problem.errors) : problem.errors || [];
  target.append(el("p", { text: problem.detail || problem.title || "Something went wrong." }));
  if (errors.length) {
    const list = el("ul");
    for (const item of errors) {
      list.append(el("li", { text: item.field ? `${item.field}: ${item.message}` : item.message }));
    }
    target.append(list);
  }
}

/** The file name a presigned result URL downloads as (its response-content-disposition). */
export function resultFilename(url) {
  try {
    const disposition = new URL(url).searchParams.get("response-content-disposition") || "";
    const match = disposition.match(/filename="([^"]+)"/);
    if (match) return match[1];
  } catch {
    /* not a URL */
  }
  return "result";
}

function statusText(job) {
  const words = STATUS_WORDS[job.status] || job.status;
  if (job.status === "processing" && job.progress) return `${words} ${job.progress}%`;
  if (job.status === "failed" && job.error) return `${words}: ${job.error}`;
  return words;
}

// ---------- signed in or out ----------

async function showView(signedIn, reason) {
  $("auth").hidden = signedIn;
  $("work").hidden = !signedIn;
  $("session").hidden = !signedIn;
  if (signedIn) {
    try {
      const me = await session.json("/auth/me");
      $("who").textContent = me.data.email;
    } catch {
      $("who").textContent = "";
    }
    announce("Signed in.");
    await loadJobs();
    $("operation").focus();
  } else {
    clearInterval(state.poller);
    clearTimeout(state.listTimer);
    state.poller = null;
    state.tracked.clear();
    $("uploads").replaceChildren();
    $("uploads-section").hidden = true;
    closeResult();
    announce(reason ? `Signed out: ${reason}` : reason === null ? "Signed out." : "");
    $("email").focus();
  }
}

async function authenticate(action) {
  const problem = $("auth-problem");
  problem.replaceChildren();
  const email = $("email").value.trim();
  const password = $("password").value;
  for (const button of [$("sign-in"), $("sign-up")]) button.disabled = true;
  try {
    await (action === "register" ? session.register(email, password) : session.login(email, password));
    $("password").value = "";
  } catch (error) {
    showProblem(problem, error);
  } finally {
    for (const button of [$("sign-in"), $("sign-up")]) button.disabled = false;
  }
}

// ---------- choosing files and the operation ----------

function currentOperation() {
  return state.operations.find((op) => op.path === $("operation").value);
}

function showOperation() {
  const operation = currentOperation();
  if (!operation) return;
  renderFields($("options"), operation);
  $("operation-help").textContent =
    (operation.description ? `${operation.description} ` : "") +
    (operation.batchPath ? "Several files go as one batch request." : "Several files go one request each.");
  $("files").accept = operation.accept.replace(/\s+/g, "");
  $("convert-problem").replaceChildren();
}

function addFiles(files) {
  state.chosen.push(...files);
  renderChosen();
}

function renderChosen() {
  const list = $("chosen");
  list.replaceChildren();
  state.chosen.forEach((file, index) => {
    const remove = el("button", {
      type: "button",
      class: "link",
      "aria-label": `Remove ${file.name}`,
      text: "Remove",
    });
    remove.addEventListener("click", () => {
      state.chosen.splice(index, 1);
      renderChosen();
    });
    list.append(el("li", {}, el("span", { text: `${file.name} (${formatBytes(file.size)})` }), remove));
  });
}

// ---------- uploading ----------

function uploadItem(file) {
  const upload = el("progress", { max: "100", value: "0", "aria-label": `Upload of ${file.name}` });
  const job = el("progress", { max: "100", value: "0", "aria-label": `Conversion of ${file.name}` });
  const words = el("span", { class: "state", text: "Uploading 0%" });
  const actions = el("span", { class: "item-actions" });
  const item = el(
    "li",
    { class: "upload" },
    el("span", { class: "name", text: file.name }),
    el(
      "span",
      { class: "bars" },
      el("span", { class: "bar-name", text: "upload" }),
      upload,
      el("span", { class: "bar-name", text: "conversion" }),
      job,
    ),
    words,
    actions,
  );
  $("uploads").prepend(item);
  $("uploads-section").hidden = false;
  return { item, upload, job, words, actions, file };
}

async function submitUploads(event) {
  event.preventDefault();
  const operation = currentOperation();
  const problem = $("convert-problem");
  showFieldErrors($("options"), []);
  problem.replaceChildren();
  if (!state.chosen.length) {
    showProblem(problem, new Error("Choose or drop at least one file first."));
    $("files").focus();
    return;
  }
  const files = state.chosen.splice(0);
  renderChosen();
  const fields = collectFields($("options"), operation);
  const button = $("upload");
  button.disabled = true;
  try {
    if (files.length > 1 && operation.batchPath) {
      await uploadBatch(operation, fields, files);
    } else {
      for (const file of files) await uploadOne(operation, fields, file);
    }
  } finally {
    button.disabled = false;
  }
}

function formOf(fields) {
  // Fields first: the API checks the fields sent before a file as soon as the file starts.
  const form = new FormData();
  for (const [name, value] of fields) form.append(name, value);
  return form;
}

async function uploadOne(operation, fields, file) {
  const ui = uploadItem(file);
  const form = formOf(fields);
  form.append("file", file, file.name);
  try {
    const answer = await session.upload(operation.path, form, (loaded, total) => {
      const percent = Math.round((100 * loaded) / total);
      ui.upload.value = percent;
      ui.words.textContent = `Uploading ${percent}%`;
    });
    track(answer.data.job_id, ui);
  } catch (error) {
    refused(ui, error);
  }
}

async function uploadBatch(operation, fields, files) {
  const items = files.map(uploadItem);
  const form = formOf(fields);
  for (const file of files) form.append("files", file, file.name);
  // Parts go in order: each file's share of the bytes sent is its progress.
  const offsets = [];
  let sum = 0;
  for (const file of files) {
    offsets.push(sum);
    sum += file.size;
  }
  try {
    const answer = await session.upload(operation.batchPath, form, (loaded, total) => {
      const sent = (loaded / total) * sum;
      items.forEach((ui, index) => {
        const size = files[index].size || 1;
        const percent = Math.round(100 * Math.min(1, Math.max(0, (sent - offsets[index]) / size)));
        ui.upload.value = percent;
        ui.words.textContent = `Uploading ${percent}%`;
      });
    });
    answer.data.jobs.forEach((job, index) => track(job.job_id, items[index]));
  } catch (error) {
    for (const ui of items) refused(ui, error);
  }
}

function refused(ui, error) {
  ui.item.classList.add("failed");
  ui.words.textContent = `Refused: ${error.message}`;
  ui.job.previousElementSibling.remove();
  ui.job.remove();
  showProblem($("convert-problem"), error, $("options"));
  announce(`${ui.file.name} was refused: ${error.message}`);
}

// ---------- following jobs ----------

function track(jobId, ui) {
  ui.upload.value = 100;
  ui.item.dataset.job = jobId;
  const entry = { ...ui, status: "pending", jobId };
  state.tracked.set(jobId, entry);
  update(entry, { id: jobId, status: "pending", progress: 0 });
  const cancel = el("button", { type: "button", class: "secondary", text: "Cancel" });
  cancel.setAttribute("aria-label", `Cancel ${ui.file.name}`);
  cancel.addEventListener("click", () => cancelJob(jobId));
  ui.actions.replaceChildren(cancel);
  state.poller ??= setInterval(poll, POLL_MS);
  announce(`${ui.file.name} uploaded; job queued.`);
}

function update(entry, job) {
  const before = entry.status;
  entry.status = job.status;
  entry.job.value = job.status === "completed" ? 100 : job.progress || 0;
  entry.words.textContent = statusText(job);
  entry.item.dataset.status = job.status;
  if (before !== job.status && FINAL.has(job.status)) {
    entry.item.classList.toggle("failed", job.status === "failed");
    entry.actions.replaceChildren();
    if (job.status === "completed") {
      const view = el("button", { type: "button", text: "View result" });
      view.setAttribute("aria-label", `View the result of ${entry.file.name}`);
      view.addEventListener("click", () => openResult(job.id));
      entry.actions.append(view);
    }
    announce(`${entry.file.name}: ${statusText(job)}`);
    loadJobs();
  }
}

async function poll() {
  const active = [...state.tracked.values()].filter((entry) => !FINAL.has(entry.status));
  if (!active.length) {
    clearInterval(state.poller);
    state.poller = null;
    return;
  }
  await Promise.all(
    active.map(async (entry) => {
      try {
        const answer = await session.json(`/jobs/${entry.jobId}`);
        update(entry, answer.data);
      } catch (error) {
        if (error.status === 404) update(entry, { id: entry.jobId, status: "deleted", progress: 0 });
      }
    }),
  );
}

async function cancelJob(jobId) {
  try {
    await session.fetch(`/jobs/${jobId}`, { method: "DELETE" });
    const entry = state.tracked.get(jobId);
    if (entry) update(entry, { id: jobId, status: "deleted", progress: 0 });
    announce("Job cancelled and deleted.");
    await loadJobs();
  } catch (error) {
    announce(`Could not cancel: ${error.message}`);
  }
}

// ---------- the job list ----------

async function loadJobs() {
  if (!session.signedIn) return;
  const query = new URLSearchParams({ page: state.page, page_size: PAGE_SIZE });
  if ($("filter-status").value) query.set("status", $("filter-status").value);
  if ($("filter-type").value) query.set("job_type", $("filter-type").value);
  let page;
  try {
    page = (await session.json(`/jobs?${query}`)).data;
  } catch (error) {
    announce(`The job list could not be read: ${error.message}`);
    return;
  }
  state.total = page.total;
  const pages = Math.max(1, Math.ceil(page.total / PAGE_SIZE));
  if (state.page > pages) {
    state.page = pages;
    return loadJobs();
  }
  const rows = page.items.map((job) => {
    const actions = el("td", { class: "item-actions" });
    const name = state.tracked.get(job.id)?.file.name || (job.result_url && resultFilename(job.result_url));
    if (job.status === "completed") {
      const view = el("button", { type: "button", text: "View" });
      view.setAttribute("aria-label", `View result ${name || job.id}`);
      view.addEventListener("click", () => openResult(job.id));
      actions.append(view);
    }
    const active = job.status === "pending" || job.status === "processing";
    const remove = el("button", { type: "button", class: "secondary", text: active ? "Cancel" : "Delete" });
    remove.setAttribute("aria-label", `${active ? "Cancel" : "Delete"} job ${name || job.id}`);
    remove.addEventListener("click", () => cancelJob(job.id));
    actions.append(remove);
    return el(
      "tr",
      { "data-job": job.id, "data-status": job.status },
      el("td", { text: new Date(job.created_at).toLocaleString() }),
      el("td", { text: job.job_type.replace(/_/g, " ") }, name ? el("small", { text: name }) : ""),
      el("td", { class: `st-${job.status}`, text: statusText(job) }),
      actions,
    );
  });
  if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: "4", text: "No jobs yet." })));
  $("jobs").replaceChildren(...rows);
  // Jobs still running that this tab does not follow (e.g. from before a reload): read the
  // page again in a few seconds, so their rows move on too.
  clearTimeout(state.listTimer);
  if (page.items.some((job) => !FINAL.has(job.status) && !state.tracked.has(job.id))) {
    state.listTimer = setTimeout(loadJobs, LIST_REFRESH_MS);
  }
  $("page-info").textContent = `Page ${state.page} of ${pages} (${page.total} jobs)`;
  $("prev").disabled = state.page <= 1;
  $("next").disabled = state.page >= pages;
}

// ---------- the result view ----------

function revokeResultUrls() {
  for (const url of state.resultUrls) URL.revokeObjectURL(url);
  state.resultUrls = [];
}

function closeResult() {
  revokeResultUrls();
  $("result").hidden = true;
  $("original-view").replaceChildren();
  $("result-view").replaceChildren();
}

/** An img or video element for `src`; resolves with it and its dimensions once loaded. */
function mediaElement(src, type, label) {
  return new Promise((resolve) => {
    const isVideo = type.startsWith("video/");
    const node = isVideo
      ? el("video", { controls: "", preload: "metadata", muted: "", playsinline: "" })
      : el("img", { alt: label });
    if (isVideo) node.setAttribute("aria-label", label);
    const done = () =>
      resolve({
        node,
        width: isVideo ? node.videoWidth : node.naturalWidth,
        height: isVideo ? node.videoHeight : node.naturalHeight,
      });
    node.addEventListener(isVideo ? "loadedmetadata" : "load", done, { once: true });
    node.addEventListener("error", () => resolve({ node, width: null, height: null }), { once: true });
    node.src = src;
  });
}

function dims(media) {
  return media?.width ? `${media.width} × ${media.height}` : "unknown";
}

async function openResult(jobId) {
  closeResult();
  let job;
  try {
    job = (await session.json(`/jobs/${jobId}`)).data;
  } catch (error) {
    announce(`The job could not be read: ${error.message}`);
    return;
  }
  if (job.status !== "completed" || !job.result_url) return;
  const filename = resultFilename(job.result_url);
  // Read the result once (the storage answers CORS): its bytes give size and type, and the
  // preview and the download use the same object URL.
  let blob = null;
  try {
    const response = await fetch(job.result_url);
    if (response.ok) blob = await response.blob();
  } catch {
    blob = null;
  }
  const resultSrc = blob ? URL.createObjectURL(blob) : job.result_url;
  if (blob) state.resultUrls.push(resultSrc);
  const resultType = blob?.type || (job.job_type === "video_thumbnail" || job.job_type.startsWith("image") ? "image/" : "video/");
  const result = await mediaElement(resultSrc, resultType, `Result: ${filename}`);
  $("result-view").replaceChildren(result.node);

  const file = state.tracked.get(jobId)?.file;
  let original = null;
  if (file) {
    const originalSrc = URL.createObjectURL(file);
    state.resultUrls.push(originalSrc);
    original = await mediaElement(originalSrc, file.type || (job.job_type.startsWith("video") ? "video/" : "image/"), `Original: ${file.name}`);
    $("original-view").replaceChildren(original.node);
  } else {
    $("original-view").replaceChildren(
      el("p", { class: "help", text: "The original is shown for files uploaded in this session only." }),
    );
  }
  $("o-size").textContent = file ? formatBytes(file.size) : "—";
  $("r-size").textContent = formatBytes(blob?.size);
  $("o-dims").textContent = file ? dims(original) : "—";
  $("r-dims").textContent = dims(result);
  $("o-format").textContent = file ? file.type || "unknown" : "—";
  $("r-format").textContent = blob?.type || "unknown";
  if (file && blob && file.size) {
    const saving = Math.round((1 - blob.size / file.size) * 1000) / 10;
    $("saving").textContent =
      saving >= 0 ? `Saving: ${saving}% smaller than the original.` : `The result is ${-saving}% larger than the original.`;
  } else {
    $("saving").textContent = "";
  }
  const download = $("download");
  download.href = resultSrc;
  download.download = filename;
  download.textContent = `Download ${filename}`;
  $("result").hidden = false;
  $("result").focus();
  announce(`Result of ${file?.name || jobId} shown.`);
}

// ---------- start ----------

function wire() {
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    authenticate("login");
  });
  $("sign-up").addEventListener("click", () => authenticate("register"));
  $("sign-out").addEventListener("click", () => session.logout());
  $("operation").addEventListener("change", showOperation);
  $("convert-form").addEventListener("submit", submitUploads);
  $("files").addEventListener("change", (event) => {
    addFiles([...event.target.files]);
    event.target.value = "";
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    addFiles([...event.dataTransfer.files]);
  });
  $("close-result").addEventListener("click", closeResult);
  $("refresh").addEventListener("click", loadJobs);
  for (const id of ["filter-status", "filter-type"]) {
    $(id).addEventListener("change", () => {
      state.page = 1;
      loadJobs();
    });
  }
  $("prev").addEventListener("click", () => {
    state.page = Math.max(1, state.page - 1);
    loadJobs();
  });
  $("next").addEventListener("click", () => {
    state.page += 1;
    loadJobs();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !$("result").hidden) closeResult();
  });
}

async function start() {
  wire();
  try {
    const { operations, statuses, jobTypes } = await loadOperations();
    state.operations = operations;
    for (const operation of operations) {
      $("operation").append(el("option", { value: operation.path, text: operation.summary }));
    }
    for (const status of statuses) $("filter-status").append(el("option", { value: status, text: status }));
    for (const type of jobTypes) $("filter-type").append(el("option", { value: type, text: type.replace(/_/g, " ") }));
    showOperation();
  } catch (error) {
    announce(error.message);
  }
  if (!(await session.resume())) showView(false);
}

start();
