/// The dashboard's page, style and script, compiled into the binary: no files to deploy, no
/// build step. Plain HTML, CSS and JavaScript; charts are SVG drawn by the script.
enum DashboardAssets {
    static let index = #"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Switchboard</title>
        <link rel="stylesheet" href="/ui/app.css">
        <script src="/ui/app.js" defer></script>
        </head>
        <body>
        <header>
          <h1>Switchboard</h1>
          <nav id="nav" hidden>
            <a href="#overview">Overview</a>
            <a href="#instances">Instances</a>
            <a href="#quotas">Quotas</a>
            <a href="#traces">Requests</a>
            <a href="#config">Configuration</a>
            <span id="who"></span>
            <button id="signout" type="button">Sign out</button>
          </nav>
        </header>
        <main>
          <section id="signin-view" hidden>
            <form id="signin">
              <h2>Sign in</h2>
              <label for="key">Admin key</label>
              <input id="key" name="key" type="password" autocomplete="off" required>
              <button type="submit">Sign in</button>
              <p id="signin-error" role="alert"></p>
            </form>
          </section>
          <section id="overview-view" hidden>
            <h2>Overview</h2>
            <p>
              <label><input type="radio" name="window" value="15m" checked> last 15 minutes</label>
              <label><input type="radio" name="window" value="24h"> last 24 hours</label>
            </p>
            <div id="cards" class="cards"></div>
            <div id="charts"></div>
          </section>
          <section id="instances-view" hidden>
            <h2>Instances</h2>
            <table><thead><tr><th>Route</th><th>Instance</th><th>Provider</th><th>Weight</th><th>Priority</th>
              <th>Status</th><th>Active checks</th><th>Passive</th><th>Breaker</th><th>Cooldown left</th>
              <th>In flight</th><th>Errors, 15 min</th><th>Last probe</th></tr></thead><tbody id="instances"></tbody></table>
          </section>
          <section id="quotas-view" hidden>
            <h2>Quotas</h2>
            <table><thead><tr><th>Owner</th><th>Instance or rule</th><th>Used / reserved / limit</th><th></th>
              <th>Window</th><th>Resets in</th><th>Rejected, last hour</th></tr></thead><tbody id="quotas"></tbody></table>
          </section>
          <section id="traces-view" hidden>
            <h2>Requests</h2>
            <form id="trace-search"><label for="request-id">Request id</label>
              <input id="request-id" name="request-id"><button type="submit">Find</button></form>
            <table><thead><tr><th>Time</th><th>Request id</th><th>Status</th><th>Route</th><th>Consumer</th>
              <th>Model asked / served</th><th>Tokens</th><th>TTFT</th><th>Duration</th><th>Attempts</th></tr></thead>
              <tbody id="traces"></tbody></table>
          </section>
          <section id="config-view" hidden>
            <h2>Configuration</h2>
            <p><label for="kind">Resource</label>
              <select id="kind"><option>routes</option><option>consumers</option><option>upstreams</option>
                <option>services</option><option>plugin_configs</option><option>consumer_groups</option>
                <option>global_rules</option></select></p>
            <table><thead><tr><th>Id</th><th>Name</th><th>Summary</th><th>JSON</th></tr></thead>
              <tbody id="resources"></tbody></table>
            <form id="editor">
              <h3>Create or replace</h3>
              <label for="resource-id">Id</label> <input id="resource-id" required>
              <label for="resource-json">JSON</label>
              <textarea id="resource-json" rows="10" cols="80" spellcheck="false"></textarea>
              <p id="editor-error" role="alert"></p>
              <button id="save" type="submit">Save</button>
              <button id="delete" type="button">Delete</button>
            </form>
            <h3>Nodes</h3>
            <table><thead><tr><th>Node</th><th>Address</th><th>Revision</th><th>Behind</th></tr></thead>
              <tbody id="nodes"></tbody></table>
          </section>
        </main>
        </body>
        </html>
        """#

    static let style = #"""
        :root { --ok: #1a7f37; --bad: #cf222e; --warn: #9a6700; --line: #d0d7de; font-family: system-ui, sans-serif; }
        body { margin: 0; color: #1f2328; }
        header { display: flex; align-items: center; gap: 2rem; padding: .5rem 1rem; border-bottom: 1px solid var(--line); }
        header h1 { font-size: 1.2rem; margin: 0; }
        nav { display: flex; gap: 1rem; align-items: center; }
        nav a:focus, button:focus, input:focus { outline: 2px solid #0969da; }
        main { padding: 1rem; }
        .cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(11rem, 1fr)); gap: .75rem; }
        .card { border: 1px solid var(--line); border-radius: 6px; padding: .5rem .75rem; }
        .card b { display: block; font-size: 1.4rem; }
        table { border-collapse: collapse; width: 100%; font-size: .9rem; }
        th, td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
        .healthy { color: var(--ok); } .unhealthy { color: var(--bad); } .degraded { color: var(--warn); }
        .attempts { margin: 0; padding-left: 1rem; }
        svg { width: 100%; height: 80px; border: 1px solid var(--line); }
        #signin { max-width: 20rem; display: grid; gap: .5rem; }
        #editor { display: grid; gap: .4rem; max-width: 50rem; margin-top: 1rem; }
        pre { margin: 0; max-height: 8rem; overflow: auto; font-size: .8rem; }
        meter { width: 10rem; }
        .field-error { outline: 2px solid var(--bad); }
        [role=alert] { color: var(--bad); }
        """#

    static let script = #"""
        "use strict";
        let csrf = null;
        let role = null;
        const $ = (id) => document.getElementById(id);
        const views = ["signin", "overview", "instances", "quotas", "traces", "config"];

        async function api(path, options = {}) {
          const headers = Object.assign({ "Content-Type": "application/json" }, options.headers || {});
          if (csrf && options.method && options.method !== "GET") headers["X-CSRF-Token"] = csrf;
          const response = await fetch("/ui/api/" + path, Object.assign({}, options, { headers, credentials: "same-origin" }));
          const body = await response.json().catch(() => ({}));
          if (response.status === 401 && path !== "session") { show("signin"); }
          return { status: response.status, body };
        }

        function show(name) {
          for (const view of views) $(view + "-view").hidden = view !== name;
          $("nav").hidden = name === "signin";
          if (name !== "signin") refresh(name);
        }

        function cell(text, cls) {
          const td = document.createElement("td");
          td.textContent = text == null ? "—" : String(text);
          if (cls) td.className = cls;
          return td;
        }

        function ms(value) {
          if (value == null) return "—";
          return (value < 10 ? value.toFixed(1) : String(Math.round(value))) + " ms";
        }

        function chart(title, points, field) {
          const width = 300, height = 80;
          const values = points.map((p) => p[field] || 0);
          const max = Math.max(1e-9, ...values);
          const step = values.length > 1 ? width / (values.length - 1) : width;
          const line = values.map((v, i) => `${(i * step).toFixed(1)},${(height - (v / max) * (height - 4) - 2).toFixed(1)}`).join(" ");
          const figure = document.createElement("figure");
          const caption = document.createElement("figcaption");
          caption.textContent = `${title} (max ${max.toFixed(2)})`;
          figure.appendChild(caption);
          const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
          svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
          svg.setAttribute("preserveAspectRatio", "none");
          svg.setAttribute("role", "img");
          svg.setAttribute("aria-label", title);
          const polyline = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
          polyline.setAttribute("points", line);
          polyline.setAttribute("fill", "none");
          polyline.setAttribute("stroke", "#0969da");
          svg.appendChild(polyline);
          figure.appendChild(svg);
          return figure;
        }

        async function refresh(name) {
          if (name === "overview") {
            const window = document.querySelector("input[name=window]:checked").value;
            const { body } = await api("overview?window=" + window);
            if (!body.total) return;
            const t = body.total;
            const cards = [
              ["Requests", String(t.requests)],
              ["Requests/s", t.requests_per_second.toFixed(3)],
              ["Prompt tokens/s", t.prompt_tokens_per_second.toFixed(1)],
              ["Completion tokens/s", t.completion_tokens_per_second.toFixed(1)],
              ["Error rate", (t.error_rate * 100).toFixed(1) + " %"],
              ["Errors by class", Object.entries(t.errors_by_class).map(([k, v]) => `${k} ${v}`).join(", ") || "none"],
              ["TTFT p50 / p95", `${ms(t.ttft_p50_ms)} / ${ms(t.ttft_p95_ms)}`],
              ["Latency p50 / p95", `${ms(t.latency_p50_ms)} / ${ms(t.latency_p95_ms)}`],
            ];
            $("cards").replaceChildren(...cards.map(([label, value]) => {
              const div = document.createElement("div");
              div.className = "card";
              div.dataset.metric = label;
              div.textContent = label;
              const b = document.createElement("b");
              b.textContent = value;
              div.appendChild(b);
              return div;
            }));
            $("charts").replaceChildren(
              chart("requests/s", body.points, "requests_per_second"),
              chart("completion tokens/s", body.points, "completion_tokens_per_second"),
              chart("error rate", body.points, "error_rate"));
          } else if (name === "instances") {
            const { body } = await api("instances");
            $("instances").replaceChildren(...(body.list || []).map((i) => {
              const tr = document.createElement("tr");
              tr.dataset.instance = i.instance;
              tr.dataset.status = i.status;
              const errors = Object.entries(i.recent_errors || {}).map(([k, v]) => `${k} ${v}`).join(", ");
              tr.append(cell(i.route_name || i.route_id), cell(i.instance), cell(i.provider), cell(i.weight),
                cell(i.priority), cell(i.status, i.status), cell(i.active_checks ? "yes" : "no"), cell(i.passive),
                cell(i.breaker), cell(i.cooldown_seconds_left != null ? i.cooldown_seconds_left + " s" : null),
                cell(i.in_flight), cell(errors || null), cell(i.last_probe ? i.last_probe.result : null));
              return tr;
            }));
          } else if (name === "quotas") {
            const { body } = await api("quotas");
            $("quotas").replaceChildren(...(body.list || []).map((q) => {
              const tr = document.createElement("tr");
              tr.dataset.subject = q.subject;
              const meter = document.createElement("meter");
              meter.min = 0; meter.max = q.limit; meter.value = q.used + q.reserved;
              meter.setAttribute("aria-label", `${q.subject} used`);
              const td = document.createElement("td");
              td.appendChild(meter);
              tr.append(cell(q.owner), cell(q.subject), cell(`${q.used} / ${q.reserved} / ${q.limit}`), td,
                cell(q.time_window + " s"), cell(Math.ceil(q.reset_in) + " s"), cell(q.rejections_last_hour));
              return tr;
            }));
          } else if (name === "config") {
            const kind = $("kind").value;
            const { body } = await api("admin/" + kind);
            $("resources").replaceChildren(...(body.list || []).map((item) => {
              const v = item.value;
              const tr = document.createElement("tr");
              const id = v.id ?? v.username;
              tr.dataset.id = id;
              const pre = document.createElement("pre");
              pre.textContent = JSON.stringify(v, null, 2);
              const td = document.createElement("td");
              td.appendChild(pre);
              const open = document.createElement("button");
              open.type = "button";
              open.textContent = id;
              open.addEventListener("click", () => {
                const copy = Object.assign({}, v);
                delete copy.create_time; delete copy.update_time;
                $("resource-id").value = id;
                $("resource-json").value = JSON.stringify(copy, null, 2);
                $("resource-json").focus();
              });
              const idCell = document.createElement("td");
              idCell.appendChild(open);
              tr.append(idCell, cell(v.name || v.desc), cell(v.uri || (v.uris || []).join(", ") || Object.keys(v.plugins || {}).join(", ")), td);
              return tr;
            }));
            const nodes = await api("cluster");
            $("nodes").replaceChildren(...((nodes.body && nodes.body.nodes) || []).map((n) => {
              const tr = document.createElement("tr");
              tr.append(cell(n.id), cell(n.address), cell(n.revision), cell(n.behind ? "yes" : "no"));
              return tr;
            }));
            for (const control of [$("save"), $("delete"), $("resource-json"), $("resource-id")]) control.disabled = role !== "admin";
          } else if (name === "traces") {
            const id = $("request-id").value.trim();
            const { body } = await api("traces" + (id ? "?request_id=" + encodeURIComponent(id) : "?limit=100"));
            $("traces").replaceChildren(...(body.list || []).map((t) => {
              const tr = document.createElement("tr");
              tr.dataset.requestId = t.request_id;
              const attempts = document.createElement("ol");
              attempts.className = "attempts";
              for (const a of t.attempts) {
                const li = document.createElement("li");
                li.textContent = `${a.instance}: ${a.error_class || "ok"}, status ${a.status}, ${a.duration_ms} ms` +
                  (a.retry_wait_ms != null ? `, then waited ${a.retry_wait_ms} ms` : "");
                attempts.appendChild(li);
              }
              const td = document.createElement("td");
              td.appendChild(attempts);
              tr.append(cell(new Date(t.time * 1000).toLocaleTimeString()), cell(t.request_id), cell(t.status),
                cell(t.route_id), cell(t.consumer), cell(`${t.model_asked ?? "—"} / ${t.model_served ?? "—"}`),
                cell(t.prompt_tokens != null ? `${t.prompt_tokens} + ${t.completion_tokens}` : null),
                cell(t.ttft_ms != null ? t.ttft_ms + " ms" : null), cell(t.duration_ms + " ms"), td);
              return tr;
            }));
          }
        }

        function route() {
          const name = (location.hash || "#overview").slice(1);
          show(views.includes(name) && name !== "signin" ? name : "overview");
        }

        document.addEventListener("DOMContentLoaded", async () => {
          $("signin").addEventListener("submit", async (event) => {
            event.preventDefault();
            const { status, body } = await api("session", { method: "POST", body: JSON.stringify({ key: $("key").value }) });
            $("key").value = "";
            if (status !== 200) { $("signin-error").textContent = body.error_msg || "sign-in failed"; return; }
            csrf = body.csrf; role = body.role;
            $("who").textContent = role;
            route();
          });
          $("signout").addEventListener("click", async () => {
            await api("session", { method: "DELETE" });
            csrf = null; role = null;
            show("signin");
          });
          $("trace-search").addEventListener("submit", (event) => { event.preventDefault(); refresh("traces"); });
          $("kind").addEventListener("change", () => refresh("config"));
          $("editor").addEventListener("submit", async (event) => {
            event.preventDefault();
            $("resource-json").classList.remove("field-error");
            let body;
            try { body = JSON.parse($("resource-json").value); } catch (e) {
              $("editor-error").textContent = "not JSON: " + e.message;
              $("resource-json").classList.add("field-error");
              return;
            }
            const path = "admin/" + $("kind").value + "/" + encodeURIComponent($("resource-id").value);
            const result = await api(path, { method: "PUT", body: JSON.stringify(body) });
            if (result.status >= 400) {
              const message = result.body.error_msg || "refused";
              const field = /property "([^"]+)"/.exec(message);
              $("editor-error").textContent = (field ? `${field[1]}: ` : "") + message;
              $("resource-json").classList.add("field-error");
              return;
            }
            $("editor-error").textContent = "saved";
            refresh("config");
          });
          $("delete").addEventListener("click", async () => {
            const path = "admin/" + $("kind").value + "/" + encodeURIComponent($("resource-id").value);
            const result = await api(path, { method: "DELETE" });
            $("editor-error").textContent = result.status >= 400 ? (result.body.error_msg || result.body.message || "refused") : "deleted";
            refresh("config");
          });
          for (const input of document.querySelectorAll("input[name=window]")) input.addEventListener("change", () => refresh("overview"));
          window.addEventListener("hashchange", route);
          const { status, body } = await api("session");
          if (status === 200) { csrf = body.csrf; role = body.role; $("who").textContent = role; route(); } else { show("signin"); }
          setInterval(() => {
            const visible = views.find((v) => !$(v + "-view").hidden);
            if (visible && ["overview", "instances", "quotas"].includes(visible)) refresh(visible);
          }, 2000);
        });
        """#
}
