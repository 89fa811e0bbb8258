/* Neuron browser of the intraneuron report: vanilla JS, no network, data from the embedded
 * <script id="browser-data" type="application/json"> (see intraneuron/report/browser.py).
 * Every data string is inserted with textContent, never as HTML. */
(function () {
  "use strict";

  var source = document.getElementById("browser-data");
  if (!source) { return; }
  var DATA = JSON.parse(source.textContent);
  var S = DATA.strings;
  var PALETTE = DATA.palette;
  var SVGNS = "http://www.w3.org/2000/svg";
  var WHY = {
    example: "example neuron", strongest: "strongest effect", sample: "random sample",
    all: "all neurons embedded"
  };

  var byKey = new Map();
  DATA.neurons.forEach(function (n) { byKey.set(n.layer + ":" + n.neuron, n); });

  var form = document.getElementById("nb-neuron-form");
  var layerSelect = document.getElementById("nb-layer");
  var neuronInput = document.getElementById("nb-neuron");
  var neuronList = document.getElementById("nb-neuron-list");
  var tokenForm = document.getElementById("nb-token-form");
  var tokenInput = document.getElementById("nb-token");
  var message = document.getElementById("nb-message");
  var results = document.getElementById("nb-results");
  var view = document.getElementById("nb-view");
  var picks = document.getElementById("nb-picks");

  function h(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (k === "text") { node.textContent = attrs[k]; }
        else if (k === "cls") { node.className = attrs[k]; }
        else { node.setAttribute(k, attrs[k]); }
      });
    }
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS(SVGNS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function colour(cluster) {
    return cluster === null || cluster < 0 ? "#999999" : PALETTE[cluster % PALETTE.length];
  }

  function ink(hex) {  /* black or white text, whichever reads better on `hex` */
    var r = parseInt(hex.substr(1, 2), 16), g = parseInt(hex.substr(3, 2), 16),
      b = parseInt(hex.substr(5, 2), 16);
    return (0.299 * r + 0.587 * g + 0.114 * b) > 150 ? "#111" : "#fff";
  }

  function shown(token) {  /* visible label of a token; whitespace-only tokens stay visible */
    var t = token.trim();
    return t.length ? t : JSON.stringify(token);
  }

  function num(x, digits) {
    if (x === null || x === undefined) { return "–"; }
    if (Number.isInteger(x)) { return String(x); }
    return Number(x).toPrecision(digits || 3);
  }

  function say(text) { message.textContent = text; }

  function fillNeuronList() {
    var layer = Number(layerSelect.value);
    neuronList.textContent = "";
    DATA.neurons.forEach(function (n) {
      if (n.layer === layer) { neuronList.appendChild(h("option", { value: String(n.neuron) })); }
    });
  }

  function fillPicks() {
    picks.textContent = "";
    picks.appendChild(h("div", { cls: "pick-title", text: "Quick picks (example neurons, then the strongest effects):" }));
    DATA.layers.forEach(function (layer) {
      var strongest = DATA.neurons.filter(function (n) {
        return n.layer === layer && (n.why === "strongest" || n.why === "example");
      }).slice(0, 10);
      if (!strongest.length) {
        strongest = DATA.neurons.filter(function (n) { return n.layer === layer; }).slice(0, 10);
      }
      var row = h("div", { cls: "pick-row" }, [h("span", { cls: "pick-label", text: "Layer " + layer + ":" })]);
      strongest.forEach(function (n) {
        row.appendChild(h("a", { href: "#L" + n.layer + "N" + n.neuron, cls: "pick", text: "neuron " + n.neuron }));
      });
      picks.appendChild(row);
    });
  }

  function segmentBoundaries(labels) {
    var out = [];
    for (var i = 1; i < labels.length; i++) { if (labels[i] !== labels[i - 1]) { out.push(i); } }
    return out;
  }

  function strip(n) {
    var k = n.act.length, W = 1000, H = 170, top = 22, bottom = 8;
    var acts = n.act.map(function (a) { return a === null ? 0 : a; });
    var hi = Math.max.apply(null, acts.concat([0])), lo = Math.min.apply(null, acts.concat([0]));
    var span = (hi - lo) || 1, step = W / Math.max(k, 1);
    var y = function (v) { return top + (H - top - bottom) * (hi - v) / span; };
    var root = svg("svg", {
      viewBox: "0 0 " + W + " " + H, class: "strip", role: "img",
      "aria-label": "core tokens by mean activation, coloured by cluster"
    });
    acts.forEach(function (a, i) {
      var bar = svg("rect", {
        x: (i * step + step * 0.08).toFixed(2), width: (step * 0.84).toFixed(2),
        y: Math.min(y(a), y(0)).toFixed(2), height: Math.max(Math.abs(y(a) - y(0)), 0.5).toFixed(2),
        fill: colour(n.cl[i]), "data-rank": String(i)
      });
      var title = svg("title", {});
      title.textContent = "rank " + i + ": " + shown(S[n.tok[i]]) + " — mean activation " +
        num(n.act[i], 4) + ", cluster " + n.cl[i];
      bar.appendChild(title);
      root.appendChild(bar);
    });
    segmentBoundaries(n.fine).forEach(function (b) {
      root.appendChild(svg("line", { x1: b * step, x2: b * step, y1: top - 4, y2: H, class: "fine-boundary" }));
    });
    var coarse = segmentBoundaries(n.seg);
    coarse.forEach(function (b) {
      root.appendChild(svg("line", { x1: b * step, x2: b * step, y1: 0, y2: H, class: "boundary" }));
    });
    var starts = [0].concat(coarse), ends = coarse.concat([k]);
    starts.forEach(function (s, j) {
      var label = svg("text", { x: ((s + ends[j]) / 2) * step, y: 13, class: "seg-label" });
      label.textContent = "segment " + n.seg[s] + (j === 0 ? " (top)" : "");
      root.appendChild(label);
    });
    root.appendChild(svg("line", { x1: 0, x2: W, y1: y(0), y2: y(0), class: "axis" }));
    return root;
  }

  function clusterLegend(n) {
    var list = h("ul", { cls: "cluster-legend" });
    n.clusters.forEach(function (c) {
      list.appendChild(h("li", {}, [
        h("span", { cls: "swatch", style: "background:" + colour(c[0]) }),
        h("strong", { text: "cluster " + c[0] + " " }),
        h("span", { cls: "cluster-name", text: c[1] }),
        h("span", { cls: "muted", text: " — " + c[2] + (c[2] === 1 ? " token" : " tokens") + ", mean activation " + num(c[3]) })
      ]));
    });
    return list;
  }

  function chips(n) {
    var wrap = h("div", { cls: "chips" });
    var current = null, box = null;
    n.tok.forEach(function (t, i) {
      if (n.seg[i] !== current) {
        current = n.seg[i];
        box = h("div", { cls: "segment-box" }, [h("div", {
          cls: "segment-title",
          text: "segment " + current + (current === 0 ? " (highest activations)" : "")
        })]);
        wrap.appendChild(box);
      }
      var c = colour(n.cl[i]);
      var chip = h("button", {
        type: "button", cls: "chip", style: "background:" + c + ";color:" + ink(c),
        title: "rank " + i + ", mean activation " + num(n.act[i], 4) + ", cluster " + n.cl[i],
        "data-rank": String(i), text: shown(S[t])
      });
      chip.addEventListener("click", function () { focusRow(i); });
      box.appendChild(chip);
    });
    return wrap;
  }

  function focusRow(rank) {
    var row = document.getElementById("nb-row-" + rank);
    if (!row) { return; }
    row.scrollIntoView({ block: "center" });
    row.classList.remove("flash");
    void row.offsetWidth;
    row.classList.add("flash");
  }

  function contextCell(left, token, right) {
    /* the token highlighted in its context; its surrounding whitespace stays unhighlighted */
    var core = token.trim() || token, at = token.indexOf(core);
    return [
      h("span", { cls: "ctx-left", text: left + token.slice(0, at) }),
      h("mark", { text: core }),
      h("span", { cls: "ctx-right", text: token.slice(at + core.length) + right })
    ];
  }

  function contexts(n) {
    var names = {};
    n.clusters.forEach(function (c) { names[c[0]] = c[1]; });
    var body = h("tbody");
    n.tok.forEach(function (t, i) {
      var ctx = n.ctx[i] || [0, 0];
      var c = colour(n.cl[i]);
      body.appendChild(h("tr", { id: "nb-row-" + i }, [
        h("td", { cls: "num", text: String(i) }),
        h("td", {}, [h("span", { cls: "chip small", style: "background:" + c + ";color:" + ink(c), text: shown(S[t]) })]),
        h("td", { cls: "num", text: num(n.act[i], 4) }),
        h("td", { cls: "num", text: num(n.cnt[i]) }),
        h("td", { text: n.cl[i] + (names[n.cl[i]] ? " · " + names[n.cl[i]] : "") }),
        h("td", { cls: "num", text: n.seg[i] + " / " + n.fine[i] }),
        h("td", { cls: "context" }, contextCell(S[ctx[0]], S[t], S[ctx[1]]))
      ]));
    });
    var head = h("thead", {}, [h("tr", {}, ["rank", "token", "mean act.", "count", "cluster",
      "segment / fine", "max-activating context"].map(function (x) { return h("th", { text: x }); }))]);
    return h("div", { cls: "table-wrap" }, [h("table", { cls: "contexts", id: "nb-contexts" }, [head, body])]);
  }

  function metrics(n) {
    var dl = h("dl", { cls: "metrics" });
    DATA.metrics.forEach(function (m, j) {
      if (n.m[j] === null || n.m[j] === undefined) { return; }
      dl.appendChild(h("div", {}, [h("dt", { text: m[1] }), h("dd", { text: num(n.m[j]) })]));
    });
    return dl;
  }

  function showNeuron(layer, neuron, scroll) {
    var n = byKey.get(layer + ":" + neuron);
    view.textContent = "";
    if (!n) {
      var inc = DATA.included[String(layer)];
      say(inc ? "Neuron " + neuron + " of layer " + layer + " is not embedded in this report (" +
        inc.embedded + " of " + inc.total + " neurons of that layer are; the list offers them)."
        : "Layer " + layer + " is not in this report.");
      return false;
    }
    layerSelect.value = String(layer);
    fillNeuronList();
    neuronInput.value = String(neuron);
    say("");
    var title = h("h3", { text: "Layer " + layer + " · neuron " + neuron });
    var article = h("article", { cls: "neuron", id: "nb-neuron-view", "data-layer": String(layer), "data-neuron": String(neuron) }, [
      h("div", { cls: "neuron-head" }, [title, h("span", { cls: "why", text: WHY[n.why] || n.why })])
    ]);
    if (n.excluded) {
      article.appendChild(h("p", { cls: "muted nb-excluded", text: "Excluded from the claims: " + n.excluded + "." }));
    }
    article.appendChild(metrics(n));
    if (n.tok.length) {
      article.appendChild(h("h4", { text: "Core tokens by mean activation (bars coloured by cluster; lines: segment boundaries)" }));
      article.appendChild(strip(n));
      article.appendChild(clusterLegend(n));
      article.appendChild(h("h4", { text: "Tokens per activation segment (click a token for its context)" }));
      article.appendChild(chips(n));
      article.appendChild(h("h4", { text: "Each core token in its maximally activating context" }));
      article.appendChild(contexts(n));
    }
    view.appendChild(article);
    if (scroll) { view.scrollIntoView({ block: "start" }); }
    return true;
  }

  var tokenIndex = null;
  function buildTokenIndex() {
    tokenIndex = new Map();
    DATA.neurons.forEach(function (n, idx) {
      n.tok.forEach(function (t, rank) {
        var key = S[t].trim().toLowerCase();
        if (!tokenIndex.has(key)) { tokenIndex.set(key, []); }
        tokenIndex.get(key).push([idx, rank]);
      });
    });
  }

  function searchToken(text) {
    var query = text.trim().toLowerCase();
    results.textContent = "";
    if (!query) { say("Type a token, e.g. a word that appears among the core tokens."); return; }
    if (!tokenIndex) { buildTokenIndex(); }
    var hits = (tokenIndex.get(query) || []).slice();
    var how = "exactly";
    if (!hits.length) {
      how = "containing";
      tokenIndex.forEach(function (list, key) {
        if (key.indexOf(query) >= 0) { hits = hits.concat(list); }
      });
    }
    if (!hits.length) {
      say("No embedded neuron has a core token matching “" + text.trim() + "”.");
      return;
    }
    hits.sort(function (a, b) { return a[1] - b[1] || a[0] - b[0]; });
    var limit = 200;
    say(hits.length + " core-token match" + (hits.length === 1 ? "" : "es") + " (" + how +
      " “" + text.trim() + "”) among the embedded neurons" + (hits.length > limit ? "; the " + limit + " best-ranked are listed" : "") + ".");
    var list = h("ol", { cls: "token-hits", id: "nb-token-hits" });
    hits.slice(0, limit).forEach(function (hit) {
      var n = DATA.neurons[hit[0]], rank = hit[1];
      var name = "";
      n.clusters.forEach(function (c) { if (c[0] === n.cl[rank]) { name = c[1]; } });
      var link = h("a", { href: "#L" + n.layer + "N" + n.neuron, text: "layer " + n.layer + " · neuron " + n.neuron });
      list.appendChild(h("li", {}, [link, h("span", { cls: "muted", text: " — “" + shown(S[n.tok[rank]]) + "” at rank " + rank + " of " + n.tok.length + ", cluster " + n.cl[rank] + (name ? " (" + name + ")" : "") })]));
    });
    results.appendChild(list);
  }

  function fromHash(scroll) {
    var m = /^#L(\d+)N(\d+)$/.exec(window.location.hash);
    if (m) { showNeuron(Number(m[1]), Number(m[2]), scroll); }
  }

  DATA.layers.forEach(function (layer) {
    layerSelect.appendChild(h("option", { value: String(layer), text: "layer " + layer }));
  });
  layerSelect.addEventListener("change", fillNeuronList);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var layer = Number(layerSelect.value), neuron = parseInt(neuronInput.value, 10);
    if (isNaN(neuron)) { say("Enter a neuron index."); return; }
    if (showNeuron(layer, neuron, true)) {
      history.replaceState(null, "", "#L" + layer + "N" + neuron);
    }
  });
  tokenForm.addEventListener("submit", function (event) {
    event.preventDefault();
    searchToken(tokenInput.value);
  });
  window.addEventListener("hashchange", function () { fromHash(true); });
  fillNeuronList();
  fillPicks();
  if (/^#L\d+N\d+$/.test(window.location.hash)) { fromHash(true); }
  else if (DATA.neurons.length) { showNeuron(DATA.neurons[0].layer, DATA.neurons[0].neuron, false); }
  document.documentElement.setAttribute("data-browser-ready", "1");
})();
