// The MoA web page: streams /v1/chat/completions and draws the layers as their events arrive.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORE = "moa.apiKey";
const RECIPE_STORE = "moa.recipe";

const state = {
  key: localStorage.getItem(KEY_STORE) || "",
  models: [],
  messages: [], // the conversation sent again with every turn
  controller: null,
};

// helpers ------------------------------------------------------------------------------------
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function headers() {
  const h = { "Content-Type": "application/json" };
  if (state.key) h.Authorization = `Bearer ${state.key}`;
  return h;
}

function seconds(s) {
  return s < 10 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

function tokens(input, output) {
  return `${input.toLocaleString()} in · ${output.toLocaleString()} out`;
}

function shortName(agent, model) {
  // "fake:alpha" reads better as "alpha" when the model line shows the full reference
  return agent === model && agent.includes(":") ? agent.slice(agent.indexOf(":") + 1) : agent;
}

function scrollDown() {
  const nearBottom = window.innerHeight + window.scrollY >= document.body.scrollHeight - 160;
  if (nearBottom) window.scrollTo({ top: document.body.scrollHeight });
}

// server-sent events over fetch: yields {event, data} ------------------------------------------
async function* readEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue; // comments keep the connection alive
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") event = val;
        else if (field === "data") data.push(val);
      }
      if (data.length) yield { event, data: data.join("\n") };
    }
  }
}

// models and the key --------------------------------------------------------------------------
async function loadModels() {
  const response = await fetch("/v1/models", { headers: headers() });
  if (response.status === 401) {
    askKey(state.key ? "That key was refused." : "");
    return;
  }
  if (!response.ok) {
    setHint(`Could not list the recipes (HTTP ${response.status}).`, true);
    return;
  }
  const body = await response.json();
  state.models = body.data;
  const select = $("recipe");
  select.replaceChildren();
  for (const model of state.models) {
    const option = el("option", null, model.id);
    option.value = model.id;
    if (model.moa && model.moa.error) option.textContent += " (unavailable)";
    select.append(option);
  }
  const saved = localStorage.getItem(RECIPE_STORE);
  const ids = state.models.map((m) => m.id);
  const usable = state.models.filter((m) => !(m.moa && m.moa.error)).map((m) => m.id);
  select.value = ids.includes(saved) ? saved : ids.includes("fake") ? "fake" : usable[0] || ids[0] || "";
  showRecipe();
  setHint("");
}

function showRecipe() {
  const model = state.models.find((m) => m.id === $("recipe").value);
  const info = $("recipe-info");
  info.replaceChildren();
  if (!model || !model.moa) return;
  if (model.moa.error) {
    info.append(el("span", "bad", model.moa.error));
    return;
  }
  const layers = model.moa.layers || [];
  const shape = layers.map((l) => l.length).join(" → ");
  if (model.moa.description) info.append(el("span", null, model.moa.description), " · ");
  info.append(el("span", "muted", `${layers.length} layer${layers.length === 1 ? "" : "s"} (${shape || "none"}) → aggregator ${model.moa.aggregator}`));
}

function askKey(message) {
  $("key-error").textContent = message || "";
  $("key-input").value = "";
  $("key-button").hidden = false;
  if (!$("key-dialog").open) $("key-dialog").showModal();
}

// one turn of the conversation ----------------------------------------------------------------
class Turn {
  constructor(prompt, recipe) {
    this.root = el("section", "turn");
    const user = el("div", "user-row");
    user.append(el("div", "user-msg", prompt));
    this.root.append(user);
    this.run = el("div", "run");
    const head = el("div", "run-head");
    head.append(el("span", "recipe-tag", recipe));
    this.status = el("span", "run-status running", "starting…");
    head.append(this.status);
    this.run.append(head);
    this.agentsBox = el("details", "agents-box");
    this.agentsBox.open = true;
    this.summary = el("summary", null, "Agents");
    this.layers = el("div", "layers");
    this.agentsBox.append(this.summary, this.layers);
    this.run.append(this.agentsBox);
    this.final = el("div", "final pending");
    const finalHead = el("div", "final-head");
    this.finalTitle = el("span", "final-title", "Final answer");
    this.finalStats = el("span", "stats");
    finalHead.append(this.finalTitle, this.finalStats);
    this.answer = el("div", "answer");
    this.answer.append(el("span", "waiting", "waiting for the proposers…"));
    this.final.append(finalHead, this.answer);
    this.run.append(this.final);
    this.foot = el("div", "run-foot");
    this.run.append(this.foot);
    this.root.append(this.run);
    this.cards = new Map(); // "layer/index" -> card
    this.text = "";
    this.trace = null;
    this.started = performance.now();
  }

  layout(plan) {
    this.layers.replaceChildren();
    plan.layers.forEach((agents, i) => {
      const layer = el("div", "layer");
      const head = el("div", "layer-head");
      head.append(el("span", "layer-title", `Layer ${i + 1}`));
      const status = el("span", "layer-status", `0 / ${agents.length} answered`);
      head.append(status);
      layer.append(head);
      const row = el("div", "agents");
      row.style.setProperty("--columns", Math.min(agents.length, 4));
      agents.forEach((a, j) => row.append(this.card(i + 1, j, a.agent, a.model)));
      layer.append(row);
      layer.status = status;
      layer.total = agents.length;
      this.layers.append(layer);
    });
    const calls = plan.layers.reduce((n, l) => n + l.length, 0);
    const count = plan.layers.length;
    this.summary.textContent = `Agents · ${count} layer${count === 1 ? "" : "s"} · ${calls} agent${calls === 1 ? "" : "s"}`;
    this.finalTitle.textContent = `Final answer · ${shortName(plan.aggregator.agent, plan.aggregator.model)}`;
    this.finalTitle.title = plan.aggregator.model;
  }

  card(layer, index, agent, model) {
    const card = el("article", "agent pending");
    const head = el("header");
    head.append(el("span", "dot"), el("span", "name", shortName(agent, model)));
    card.append(head, el("div", "model", model));
    card.body = el("div", "text", "waiting…");
    card.stats = el("footer", "stats", "");
    card.append(card.body, card.stats);
    card.dataset.layer = layer;
    card.dataset.index = index;
    this.cards.set(`${layer}/${index}`, card);
    return card;
  }

  agentEvent(ev) {
    if (ev.role === "aggregator") {
      if (ev.type === "agent.started") {
        this.final.className = "final running";
        this.status.textContent = "aggregating…";
        this.aggregatorStart = performance.now();
      } else {
        this.finalStats.textContent = `${tokens(ev.input_tokens, ev.output_tokens)} · ${seconds(ev.latency_s)}`;
        if (!ev.ok) {
          this.final.classList.add("failed");
          this.final.append(el("div", "error", `${ev.error_type}: ${ev.error}`));
        }
      }
      return;
    }
    const card = this.cards.get(`${ev.layer}/${ev.index}`);
    if (!card) return;
    if (ev.type === "agent.started") {
      card.className = "agent running";
      card.start = performance.now();
      card.body.textContent = "";
      card.body.append(el("span", "typing"));
      this.status.textContent = `layer ${ev.layer} running…`;
      return;
    }
    card.start = null;
    card.className = `agent ${ev.ok ? "done" : "failed"}`;
    card.body.textContent = ev.ok ? ev.text : `${ev.error_type}: ${ev.error}`;
    if (ev.model !== card.querySelector(".model").textContent) {
      card.querySelector(".model").textContent = `${ev.model} (fallback)`;
    }
    card.stats.textContent = `${tokens(ev.input_tokens, ev.output_tokens)} · ${seconds(ev.latency_s)}`;
    const layer = this.layers.children[ev.layer - 1];
    if (layer) {
      const done = layer.querySelectorAll(".agent.done").length;
      const failed = layer.querySelectorAll(".agent.failed").length;
      this.layerStatus(layer, done, failed);
    }
  }

  layerStatus(layer, answered, failed) {
    layer.status.textContent = `${answered} / ${layer.total} answered` + (failed ? ` · ${failed} failed` : "");
    layer.classList.toggle("partial", failed > 0);
  }

  layerEvent(ev) {
    const layer = this.layers.children[ev.layer - 1];
    if (layer) this.layerStatus(layer, ev.answered, ev.failed);
  }

  token(text) {
    if (!this.text) this.answer.replaceChildren();
    this.text += text;
    this.answer.textContent = this.text;
    this.answer.classList.add("streaming");
  }

  tick() {
    const now = performance.now();
    for (const card of this.cards.values()) {
      if (card.start) card.stats.textContent = `running · ${seconds((now - card.start) / 1000)}`;
    }
    if (this.aggregatorStart && this.final.classList.contains("running")) {
      this.finalStats.textContent = `streaming · ${seconds((now - this.aggregatorStart) / 1000)}`;
    }
  }

  finish(usage, trace) {
    this.answer.classList.remove("streaming");
    this.final.classList.remove("running", "pending");
    this.final.classList.add("done");
    if (!this.text) this.answer.textContent = "(empty answer)";
    const wall = trace ? trace.latency_s : (performance.now() - this.started) / 1000;
    const calls = trace ? trace.totals.calls : null;
    const parts = [];
    if (calls !== null) parts.push(`${calls} calls`);
    if (usage) parts.push(`${tokens(usage.prompt_tokens, usage.completion_tokens)} tokens`);
    parts.push(seconds(wall));
    this.status.className = "run-status ok";
    this.status.textContent = trace && trace.outcome === "best_proposal" ? "answered (best proposal: the aggregator failed)" : "done";
    this.foot.replaceChildren(el("span", "totals", parts.join(" · ")));
    if (trace) this.traceTools(trace);
  }

  fail(error, trace) {
    this.answer.classList.remove("streaming");
    this.final.classList.remove("running", "pending");
    this.final.classList.add("failed");
    if (!this.text) this.final.hidden = true;
    if (!this.cards.size) this.agentsBox.hidden = true;
    const box = el("div", "error");
    const failures = error.failures || [];
    const message = failures.length && error.summary ? error.summary : error.message || "";
    box.append(el("strong", null, error.code || error.type || "error"), " ", message);
    if (failures.length) {
      const list = el("ul", "failures");
      for (const f of failures) list.append(el("li", null, `${f.agent}: ${f.error_type}: ${f.error}`));
      box.append(list);
    }
    this.run.insertBefore(box, this.foot);
    this.status.className = "run-status bad";
    this.status.textContent = "failed";
    for (const card of this.cards.values()) {
      const pending = card.classList.contains("pending");
      if (pending || card.classList.contains("running")) {
        card.className = "agent cancelled";
        card.start = null;
        card.stats.textContent = pending ? "not started" : "cancelled";
        card.body.textContent = "";
      }
    }
    if (trace) this.traceTools(trace);
  }

  stopped() {
    this.fail({ code: "stopped", message: "you stopped this run; its backend calls were cancelled." });
    this.status.textContent = "stopped";
  }

  traceTools(trace) {
    this.trace = trace;
    const tools = el("span", "trace-tools");
    const pre = el("pre", "trace");
    pre.hidden = true;
    const toggle = el("button", "link", "Show trace");
    toggle.type = "button";
    toggle.addEventListener("click", () => {
      pre.hidden = !pre.hidden;
      if (!pre.textContent) pre.textContent = JSON.stringify(trace, null, 2);
      toggle.textContent = pre.hidden ? "Show trace" : "Hide trace";
    });
    const download = el("a", "link", "Download trace");
    download.href = URL.createObjectURL(new Blob([JSON.stringify(trace, null, 2)], { type: "application/json" }));
    download.download = `moa-trace-${Math.round(trace.started_at)}.json`;
    tools.append(toggle, download);
    this.foot.append(tools);
    this.run.append(pre);
  }
}

// sending -------------------------------------------------------------------------------------
const HINT = "Enter to send · Shift+Enter for a new line";

function setHint(text, bad) {
  $("hint").textContent = text || HINT;
  $("hint").className = bad ? "hint bad" : "hint";
}

function setBusy(busy) {
  $("send").hidden = busy;
  $("stop").hidden = !busy;
  $("recipe").disabled = busy;
  $("new-chat").disabled = busy;
}

async function send(prompt) {
  const model = $("recipe").value;
  if (!prompt || state.controller || !model) return;
  $("welcome").hidden = true;
  for (const box of document.querySelectorAll(".agents-box")) box.open = false; // older turns fold
  const turn = new Turn(prompt, model);
  $("thread").append(turn.root);
  scrollDown();
  state.messages.push({ role: "user", content: prompt });
  state.controller = new AbortController();
  setBusy(true);
  const timer = setInterval(() => turn.tick(), 100);
  let ok = false;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      signal: state.controller.signal,
      body: JSON.stringify({
        model,
        messages: state.messages,
        stream: true,
        stream_options: { include_usage: true },
        moa: { events: true, include_trace: true },
      }),
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      turn.fail(body.error || { message: `HTTP ${response.status}` });
      if (response.status === 401) askKey("The server refused the key.");
      return;
    }
    let usage = null;
    let trace = null;
    for await (const { event, data } of readEvents(response)) {
      if (data === "[DONE]") {
        ok = true;
        break;
      }
      const chunk = JSON.parse(data);
      if (chunk.error) {
        turn.fail(chunk.error, trace);
        return;
      }
      if (event === "moa.run") turn.layout(chunk.moa);
      else if (event === "moa.agent") turn.agentEvent(chunk.moa);
      else if (event === "moa.layer") turn.layerEvent(chunk.moa);
      else if (event === "moa.trace") trace = chunk.moa.trace;
      else {
        const choice = chunk.choices && chunk.choices[0];
        if (choice && choice.delta && choice.delta.content) turn.token(choice.delta.content);
        if (chunk.usage) usage = chunk.usage;
      }
      scrollDown();
    }
    if (ok) {
      turn.finish(usage, trace);
      state.messages.push({ role: "assistant", content: turn.text });
    } else {
      turn.fail({ code: "stream_cut", message: "the stream ended before the answer was complete." }, trace);
    }
  } catch (error) {
    if (error.name === "AbortError") turn.stopped();
    else turn.fail({ code: "network_error", message: String(error.message || error) });
  } finally {
    if (!ok) state.messages.pop(); // an unanswered question is not sent again
    clearInterval(timer);
    state.controller = null;
    setBusy(false);
    scrollDown();
    $("prompt").focus();
  }
}

function submit() {
  const box = $("prompt");
  const prompt = box.value.trim();
  if (!prompt || state.controller) return;
  box.value = "";
  autosize();
  send(prompt);
}

function autosize() {
  const box = $("prompt");
  box.style.height = "auto";
  box.style.height = `${Math.min(box.scrollHeight, 220)}px`;
}

// wiring --------------------------------------------------------------------------------------
function init() {
  $("form").addEventListener("submit", (e) => {
    e.preventDefault();
    submit();
  });
  $("prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      submit();
    }
  });
  $("prompt").addEventListener("input", autosize);
  $("stop").addEventListener("click", () => state.controller && state.controller.abort());
  $("recipe").addEventListener("change", () => {
    localStorage.setItem(RECIPE_STORE, $("recipe").value);
    showRecipe();
  });
  $("new-chat").addEventListener("click", () => {
    state.messages = [];
    $("thread").querySelectorAll(".turn").forEach((t) => t.remove());
    $("welcome").hidden = false;
    $("prompt").focus();
  });
  for (const example of document.querySelectorAll(".example")) {
    example.addEventListener("click", () => send(example.textContent));
  }
  $("key-button").addEventListener("click", () => askKey(""));
  $("key-dialog").addEventListener("close", () => {
    if ($("key-dialog").returnValue !== "save") return;
    state.key = $("key-input").value.trim();
    localStorage.setItem(KEY_STORE, state.key);
    loadModels();
  });
  fetch("/health")
    .then((r) => r.json())
    .then((h) => {
      if (h.auth) $("key-button").hidden = false;
    })
    .catch(() => {});
  loadModels();
  $("prompt").focus();
}

document.addEventListener("DOMContentLoaded", init);
