/* flx ui: draws the Chart.js charts the server configured and keeps a running run's page current.
   Chart configurations come from <script type="application/json"> blocks. */
"use strict";

(function () {
  function two(n) { return String(n).padStart(2, "0"); }

  function dateTime(ms) {
    const d = new Date(ms);
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes());
  }

  function seconds(value) {
    if (value === null || value === undefined) return "";
    if (value < 60) return value.toFixed(value < 10 ? 1 : 0) + " s";
    if (value < 3600) return Math.floor(value / 60) + " min " + two(Math.round(value % 60)) + " s";
    return Math.floor(value / 3600) + " h " + two(Math.round((value % 3600) / 60)) + " min";
  }

  function configure(spec) {
    const hints = spec.flx || {};
    const options = spec.options || {};
    options.plugins = options.plugins || {};
    options.plugins.tooltip = options.plugins.tooltip || {};
    const tooltip = options.plugins.tooltip;
    tooltip.callbacks = tooltip.callbacks || {};
    options.scales = options.scales || {};
    if (hints.x_time) {
      const x = options.scales.x = options.scales.x || {};
      x.ticks = Object.assign({ maxTicksLimit: 8 }, x.ticks || {});
      x.ticks.callback = function (value) { return dateTime(value); };
      tooltip.callbacks.title = function (items) {
        return items.length ? dateTime(items[0].parsed.x) : "";
      };
    }
    if (hints.y_seconds) {
      const y = options.scales.y = options.scales.y || {};
      if (y.display !== false) {
        y.ticks = Object.assign({}, y.ticks || {});
        y.ticks.callback = function (value) { return seconds(value); };
      }
      tooltip.callbacks.label = function (item) {
        const name = item.dataset.label || item.label || "";
        return (name ? name + ": " : "") + seconds(item.parsed.y);
      };
    }
    if (hints.tooltip_nonzero) {
      tooltip.filter = function (item) { return item.parsed.y !== 0; };
    }
    if (hints.runs || hints.dataset_runs) {
      options.onClick = function (_event, elements) {
        if (!elements.length) return;
        const hit = elements[0];
        const run = hints.dataset_runs ? hints.dataset_runs[hit.datasetIndex][hit.index] : hints.runs[hit.index];
        if (run) window.location.href = "/runs/" + encodeURIComponent(run);
      };
      options.onHover = function (event, elements) {
        event.native.target.style.cursor = elements.length ? "pointer" : "default";
      };
    }
    return { type: spec.type, data: spec.data, options: options };
  }

  function drawCharts(root) {
    if (typeof Chart === "undefined") return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      if (Chart.getChart(canvas)) return;
      const source = document.getElementById(canvas.dataset.chart);
      if (!source) return;
      new Chart(canvas, configure(JSON.parse(source.textContent)));
    });
  }

  function keepLive() {
    const live = document.querySelector("[data-live-url]");
    if (!live) return;
    const url = live.dataset.liveUrl;
    function poll() {
      fetch(url, { headers: { Accept: "text/html" }, credentials: "same-origin" })
        .then(function (response) {
          if (!response.ok) throw new Error(response.status);
          const active = response.headers.get("X-Flx-Active") === "1";
          return response.text().then(function (html) { return { html: html, active: active }; });
        })
        .then(function (result) {
          live.innerHTML = result.html;
          if (result.active) {
            window.setTimeout(poll, 2000);
          } else {
            window.location.reload();
          }
        })
        .catch(function () { window.setTimeout(poll, 5000); });
    }
    window.setTimeout(poll, 2000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    keepLive();
  });
})();
