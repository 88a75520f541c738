// The operations and their options, read at run time from the API's own OpenAPI schema
// (/docs/openapi.json): the console offers exactly the fields, bounds, choices and defaults
// the API accepts, and leaves the judging to the API (its problem details are shown).

const PREFIX = "/api/v1";
// Fields every upload endpoint takes (a preset instead of the options, a webhook URL): shown
// after the operation's own options, which are what most people set.
const COMMON_FIELDS = ["preset", "callback_url"];

/** Every upload operation: {path, batchPath, summary, kind, fields: [{name, schema, required}]}. */
export async function loadOperations() {
  const response = await fetch("/docs/openapi.json");
  if (!response.ok) throw new Error(`The API schema could not be read (HTTP ${response.status}).`);
  const schema = await response.json();
  const operations = [];
  const paths = Object.keys(schema.paths);
  for (const path of paths) {
    const post = schema.paths[path].post;
    const body = post?.requestBody?.content?.["multipart/form-data"]?.schema;
    if (!body || !body.properties?.file) continue; // single-file upload endpoints only
    const short = path.slice(PREFIX.length);
    const kind = short.split("/")[1]; // image or video
    const batch = `${PREFIX}/${kind}/batch/${short.split("/").slice(2).join("/")}`;
    operations.push({
      path: short,
      batchPath: paths.includes(batch) ? batch.slice(PREFIX.length) : null,
      summary: post.summary || short,
      description: schema.paths[path].post.requestBody.description || "",
      kind,
      accept: post.requestBody.content["multipart/form-data"].encoding?.file?.contentType || "",
      fields: Object.entries(body.properties)
        .filter(([name]) => name !== "file")
        .sort(([a], [b]) => COMMON_FIELDS.includes(a) - COMMON_FIELDS.includes(b)) // stable
        .map(([name, field]) => ({
          name,
          schema: field,
          required: (body.required || []).includes(name),
        })),
    });
  }
  const enums = (name) => schema.components?.schemas?.[name]?.enum || [];
  return { operations, statuses: enums("JobStatus"), jobTypes: enums("JobType") };
}

function isBoolean(schema) {
  return schema.type === "boolean" || (schema.oneOf || []).some((s) => s.type === "boolean");
}

function text(tag, content, attributes = {}) {
  const element = document.createElement(tag);
  if (content) element.textContent = content;
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  return element;
}

/** Inputs for an operation's fields, appended to `fieldset` (its legend is kept). */
export function renderFields(fieldset, operation) {
  for (const old of fieldset.querySelectorAll(".field")) old.remove();
  for (const { name, schema, required } of operation.fields) {
    const id = `opt-${name}`;
    const wrap = text("div", "", { class: "field", "data-field": name });
    const label = text("label", name.replace(/_/g, " "), { for: id });
    if (required) label.append(text("span", " (required)", { class: "req" }));
    let input;
    if (isBoolean(schema)) {
      wrap.classList.add("check");
      input = text("input", "", { type: "checkbox", id, name });
      input.checked = schema.default === true;
      wrap.append(input, label);
    } else if (schema.enum) {
      input = text("select", "", { id, name });
      if (!required || schema.default === undefined) {
        const none = schema.default !== undefined ? `default (${schema.default})` : "—";
        input.append(text("option", required ? "choose…" : none, { value: "" }));
      }
      for (const value of schema.enum) input.append(text("option", String(value), { value }));
      wrap.append(label, input);
    } else if (schema.type === "integer" || schema.type === "number") {
      input = text("input", "", { type: "number", id, name, inputmode: "numeric" });
      if (schema.minimum !== undefined) input.min = schema.minimum;
      if (schema.maximum !== undefined) input.max = schema.maximum;
      if (schema.default !== undefined) input.placeholder = `default ${schema.default}`;
      wrap.append(label, input);
    } else if (schema.type === "string") {
      input = text("input", "", { type: "text", id, name });
      if (schema.default !== undefined) input.placeholder = String(schema.default);
      else if (schema.pattern?.includes(":")) input.placeholder = "HH:MM:SS";
      wrap.append(label, input);
    } else {
      // JSON parts (e.g. renditions): the JSON text itself.
      input = text("textarea", "", { id, name, rows: "4", spellcheck: "false" });
      input.placeholder = '[{"name": "w320", "format": "webp", "width": 320}]';
      wrap.append(label, input);
    }
    if (required) input.setAttribute("aria-required", "true");
    const helpId = `${id}-help`;
    const help = text("p", schema.description || "", { class: "help", id: helpId });
    const error = text("p", "", { class: "field-error", id: `${id}-error` });
    input.setAttribute("aria-describedby", `${helpId} ${id}-error`);
    wrap.append(help, error);
    fieldset.append(wrap);
  }
  fieldset.hidden = operation.fields.length === 0;
}

/** The form fields to send: what the user set; left-out fields take the API's defaults. */
export function collectFields(fieldset, operation) {
  const fields = [];
  for (const { name, schema } of operation.fields) {
    const input = fieldset.querySelector(`[name="${name}"]`);
    if (isBoolean(schema)) {
      if (input.checked !== (schema.default === true)) fields.push([name, String(input.checked)]);
    } else if (input.value.trim() !== "") {
      fields.push([name, input.value.trim()]);
    }
  }
  return fields;
}

/** Show a 422's `errors[]` next to the fields they name; returns the errors no field took. */
export function showFieldErrors(fieldset, errors) {
  for (const wrap of fieldset.querySelectorAll(".field")) {
    wrap.querySelector(".field-error").textContent = "";
    wrap.querySelector("[name]").removeAttribute("aria-invalid");
  }
  const rest = [];
  for (const error of errors || []) {
    const wrap = error.field && fieldset.querySelector(`.field[data-field="${error.field}"]`);
    if (wrap) {
      wrap.querySelector(".field-error").textContent = error.message;
      wrap.querySelector("[name]").setAttribute("aria-invalid", "true");
    } else {
      rest.push(error);
    }
  }
  return rest;
}
