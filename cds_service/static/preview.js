// Card preview: one scenario at a time (chosen in the rule navigation, kept in the URL's #fragment),
// a request box that sends any request to the real endpoint and has the server draw the answer
// (/preview/render) exactly as the scenarios are drawn.
(function () {
  "use strict";
  const $ = (sel) => document.querySelector(sel);

  function serviceFor(body) {
    const chosen = $("#service").value;
    if (chosen) return chosen;
    const hook = body && typeof body === "object" ? body.hook : undefined;
    for (const opt of $("#service").options) {
      if (opt.dataset.hook && opt.dataset.hook === hook) return opt.value;
    }
    return null;
  }

  function setState(state, text) {
    $("#result").dataset.state = state;
    $("#status").textContent = text || "";
  }

  function showError(text) {
    const box = document.createElement("div");
    box.className = "error-box";
    box.textContent = text;
    $("#result").replaceChildren(box);
    setState("error", "");
  }

  async function send() {
    let body;
    try {
      body = JSON.parse($("#request").value);
    } catch (err) {
      showError("The request is not valid JSON: " + err.message);
      return;
    }
    const serviceId = serviceFor(body);
    if (!serviceId) {
      showError("Choose a service, or give the request a hook this service answers.");
      return;
    }
    setState("busy", "Sending …");
    try {
      const started = performance.now();
      const resp = await fetch("/cds-services/" + encodeURIComponent(serviceId), {
        method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body),
      });
      const elapsed = Math.round(performance.now() - started);
      let answer;
      try { answer = await resp.json(); } catch (err) { answer = {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "invalid", "diagnostics": "the answer was not JSON"}]}; }
      const drawn = await fetch("/preview/render", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({status: resp.status, body: answer}),
      });
      $("#result").innerHTML = await drawn.text();  // server-rendered and escaped by the template
      setState("done", "HTTP " + resp.status + " in " + elapsed + " ms");
    } catch (err) {
      showError("The call failed: " + err.message);
    }
  }

  async function loadScenario(event) {
    const button = event.currentTarget;
    const key = button.dataset.scenario;
    const section = button.closest("section.scenario");
    setState("busy", "Loading the scenario's request …");
    const resp = await fetch("/preview/request/" + key.split("/").map(encodeURIComponent).join("/"));
    if (!resp.ok) { showError("Could not load the request of " + key); return; }
    const request = await resp.json();
    request.hookInstance = (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()));
    $("#request").value = JSON.stringify(request, null, 2);
    $("#service").value = section.dataset.service;
    $("#result").dataset.state = "loaded";
    $("#status").textContent = "Loaded " + key + ": edit it, then Send.";
    $("#try").scrollIntoView({block: "start"});
    $("#request").focus();
  }

  function sections() { return [...document.querySelectorAll("section.scenario")]; }

  // Show the scenario the #fragment names (else the first one in the navigation) and mark its links.
  function show() {
    const all = sections();
    if (!all.length) return;
    const wanted = decodeURIComponent(location.hash.slice(1));
    let current = all.find((s) => s.id === wanted);
    if (!current) {
      const first = document.querySelector("nav.rules a.nav-item");
      current = (first && document.getElementById(first.getAttribute("href").slice(1))) || all[0];
    }
    for (const s of all) s.hidden = s !== current;
    for (const a of document.querySelectorAll("nav.rules a.nav-item")) {
      const on = a.getAttribute("href") === "#" + current.id;
      a.classList.toggle("nav-item--current", on);
      if (on) { const box = a.closest("details"); if (box) box.open = true; }
    }
    document.body.dataset.current = current.dataset.scenario;
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("#send").addEventListener("click", send);
    for (const btn of document.querySelectorAll("button.load-request")) btn.addEventListener("click", loadScenario);
    document.body.classList.add("one-at-a-time");
    // The request box stays at the top: never let the browser scroll to the chosen section.
    window.addEventListener("hashchange", () => { show(); window.scrollTo(0, 0); });
    show();
    window.scrollTo(0, 0);
    document.body.dataset.ready = "true";
  });
})();
