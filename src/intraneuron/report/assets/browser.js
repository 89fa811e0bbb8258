/* Neuron browser of the intraneuron report: vanilla JS, no network. The page embeds a manifest
 * (<script id="browser-data" type="application/json">, see intraneuron/report/browser.py); every
 * neuron's data is in a script file beside the page, added as a <script> tag when first needed
 * (browsers block fetch() of file:// URLs, not script tags). Every data string is inserted with
 * textContent, never as HTML. */
(function () {
  "use strict";

  var source = document.getElementById("browser-data");
  if (!source) { return; }
  var DATA = JSON.parse(source.textContent);
  var PALETTE = DATA.palette;
  var SVGNS = "http://www.w3.org/2000/svg";
  var MIN_BAR = 2;  /* px of the 1000-wide strip: a bar near zero stays visible */
  var WHY = { example: "example neuron", strongest: "strongest effect", sample: "random sample",
    all: "" };

  var byKey = new Map(), loading = {}, indexes = {};
  var pickWhy = {};
  Object.keys(DATA.picks).forEach(function (layer) {
    DATA.picks[layer].forEach(function (p) { pickWhy[layer + ":" + p[0]] = p[1]; });
  });

  var form = document.getElementById("nb-neuron-form");
  var layerSelect = document.getElementById("nb-layer");
  var neuronInput = document.getElementById("nb-neuron");
  var neuronList = document.getElementById("nb-neuron-list");
  var tokenForm = document.getElementById("nb-token-form");
  var tokenInput = document.getElementById("nb-token");
  var tokenMode = document.getElementById("nb-token-mode");
  var message = document.getElementById("nb-message");
  var results = document.getElementById("nb-results");
  var view = document.getElementById("nb-view");
  var picks = document.getElementById("nb-picks");

  /* the data files call these two functions */
  window.intraneuronBlock = function (block) {
    var S = block.strings;
    block.neurons.forEach(function (n) {
      n.tok = n.tok.map(function (i) { return S[i]; });
      n.ctx = n.ctx.map(function (p) { return [S[p[0]], S[p[1]]]; });
      byKey.set(n.layer + ":" + n.neuron, n);
    });
  };
  window.intraneuronIndex = function (index) { indexes[index.layer] = index; };

  function load(file) {
    if (!loading[file]) {
      loading[file] = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = file;
        tag.onload = resolve;
        tag.onerror = function () { reject(new Error("could not read " + file)); };
        document.head.appendChild(tag);
      });
    }
    return loading[file];
  }

  function blockOf(layer, neuron) {
    return (DATA.blocks[String(layer)] || []).find(function (b) {
      return neuron >= b[0] && neuron <= b[1];
    });
  }

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

  function shown(token) {  /* a token as it is: spaces as ␣, newlines as ↵, tabs as ⇥ */
    return token.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5") ||
      "(empty)";
  }

  function num(x, digits) {
    if (x === null || x === undefined) { return "–"; }
    if (Number.isInteger(x)) { return String(x); }
    return Number(x).toPrecision(digits || 3);
  }

  function say(text) { message.textContent = text; }

  function fillNeuronList() {
    neuronList.textContent = "";
    (DATA.ids[layerSelect.value] || []).forEach(function (id) {
      neuronList.appendChild(h("option", { value: String(id) }));
    });
  }

  function fillPicks() {
    picks.textContent = "";
    picks.appendChild(h("div", { cls: "pick-title", text: "Suggested neurons (example neurons, then the strongest effects):" }));
    DATA.layers.forEach(function (layer) {
      var row = h("div", { cls: "pick-row" }, [h("span", { cls: "pick-label", text: "Layer " + layer + ":" })]);
      (DATA.picks[String(layer)] || []).forEach(function (p) {
        row.appendChild(h("a", { href: "#L" + layer + "N" + p[0], cls: "pick", text: "neuron " + p[0] }));
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
      var tall = Math.max(Math.abs(y(a) - y(0)), MIN_BAR);
      var bar = svg("rect", {
        x: (i * step + step * 0.08).toFixed(2), width: (step * 0.84).toFixed(2),
        y: (a >= 0 ? y(0) - tall : y(0)).toFixed(2), height: tall.toFixed(2),
        fill: colour(n.cl[i]), "data-rank": String(i)
      });
      var title = svg("title", {});
      title.textContent = "rank " + i + ": " + shown(n.tok[i]) + " — mean activation " +
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

  function label(n, unit, index) {
    /* the labeller's category name of a cluster ("cl") or segment ("seg"), or "" */
    return (n.labels && n.labels[unit][String(index)]) || "";
  }

  function labelBadge(n, unit, index) {
    var text = label(n, unit, index);
    return text ? h("span", { cls: "category-label", title: "category label (instruct model)", text: "“" + text + "” " }) : h("span");
  }

  function clusterLegend(n) {
    var list = h("ul", { cls: "cluster-legend" });
    n.clusters.forEach(function (c) {
      list.appendChild(h("li", {}, [
        h("span", { cls: "swatch", style: "background:" + colour(c[0]) }),
        h("strong", { text: "cluster " + c[0] + " " }),
        labelBadge(n, "cl", c[0]),
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
          text: "segment " + current + (current === 0 ? " (highest activations)" : "") +
            (label(n, "seg", current) ? " — “" + label(n, "seg", current) + "”" : "")
        })]);
        wrap.appendChild(box);
      }
      var c = colour(n.cl[i]);
      var chip = h("button", {
        type: "button", cls: "chip", style: "background:" + c + ";color:" + ink(c),
        title: "rank " + i + ", mean activation " + num(n.act[i], 4) + ", cluster " + n.cl[i],
        "data-rank": String(i), text: shown(t)
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
    /* the token highlighted in its context; its surrounding whitespace stays unhighlighted.
     * WordPiece text is joined as words: a '##' piece continues the word before it, any other
     * piece follows a space. */
    if (DATA.wordpiece) {
      var glued = token.indexOf("##") === 0;
      left = left.replace(/^(\u2026?)##/, "$1");  /* a context that starts inside a word */
      token = (glued ? "" : (left ? " " : "")) + token.replace(/^##/, "");
      right = right ? (right.indexOf("##") === 0 ? right.slice(2) : " " + right) : "";
    }
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
      var ctx = n.ctx[i] || ["", ""];
      var c = colour(n.cl[i]);
      body.appendChild(h("tr", { id: "nb-row-" + i }, [
        h("td", { cls: "num", text: String(i) }),
        h("td", {}, [h("span", { cls: "chip small", style: "background:" + c + ";color:" + ink(c), text: shown(t) })]),
        h("td", { cls: "num", text: num(n.act[i], 4) }),
        h("td", { cls: "num", text: num(n.cnt[i]) }),
        h("td", { text: n.cl[i] + (label(n, "cl", n.cl[i]) ? " “" + label(n, "cl", n.cl[i]) + "”" : "") +
          (names[n.cl[i]] ? " · " + names[n.cl[i]] : "") }),
        h("td", { cls: "num", text: n.seg[i] + " / " + n.fine[i] }),
        h("td", { cls: "context" }, contextCell(ctx[0], t, ctx[1]))
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

  function render(n, scroll) {
    var why = pickWhy[n.layer + ":" + n.neuron];
    var title = h("h3", { text: "Layer " + n.layer + " · neuron " + n.neuron });
    var article = h("article", { cls: "neuron", id: "nb-neuron-view", "data-layer": String(n.layer), "data-neuron": String(n.neuron) }, [
      h("div", { cls: "neuron-head" }, why && WHY[why] ? [title, h("span", { cls: "why", text: WHY[why] })] : [title])
    ]);
    if (n.excluded) {
      article.appendChild(h("p", { cls: "muted nb-excluded", text: "Excluded from the claims: " + n.excluded + "." }));
    }
    article.appendChild(metrics(n));
    if (n.tok.length) {
      article.appendChild(h("h4", { text: "Core tokens by mean activation (bars coloured by cluster; lines: segment boundaries)" }));
      article.appendChild(strip(n));
      article.appendChild(clusterLegend(n));
      article.appendChild(h("h4", { text: "Tokens per activation segment (␣ is a space; click a token for its context)" }));
      article.appendChild(chips(n));
      article.appendChild(h("h4", { text: "Each core token in its maximally activating context" }));
      article.appendChild(contexts(n));
    }
    view.textContent = "";
    view.appendChild(article);
    if (scroll) { view.scrollIntoView({ block: "start" }); }
  }

  function showNeuron(layer, neuron, scroll) {
    var block = blockOf(layer, neuron);
    if (!block) {
      view.textContent = "";
      say(DATA.blocks[String(layer)] ? "Layer " + layer + " has no neuron " + neuron + "."
        : "Layer " + layer + " is not in this report.");
      return Promise.resolve(false);
    }
    layerSelect.value = String(layer);
    fillNeuronList();
    neuronInput.value = String(neuron);
    say("Loading layer " + layer + " · neuron " + neuron + "…");
    return load(block[2]).then(function () {
      var n = byKey.get(layer + ":" + neuron);
      if (!n) { say("Layer " + layer + " has no neuron " + neuron + "."); return false; }
      say("");
      render(n, scroll);
      return true;
    }, function (err) {
      say(err.message + ": the data folder must stay beside the page.");
      return false;
    });
  }

  function matcher(query, exact) {
    /* exact: the token's text as typed, case and spaces count (␣ may be typed for a space);
     * loose: case and surrounding spaces ignored, any token containing the query */
    if (exact) {
      var want = query.replace(/\u2423/g, " ");
      return function (t) { return t === want; };
    }
    var q = query.trim().toLowerCase();
    return function (t) { return t.trim().toLowerCase().indexOf(q) >= 0; };
  }

  function searchToken(text, exact) {
    results.textContent = "";
    if (!text.trim()) { say("Type a token, e.g. a word that appears among the core tokens."); return Promise.resolve(); }
    say("Searching…");
    var files = DATA.layers.map(function (l) { return load(DATA.index[String(l)]); });
    return Promise.all(files).then(function () {
      var match = matcher(text, exact), hits = [];
      DATA.layers.forEach(function (layer) {
        var index = indexes[layer];
        index.tokens.forEach(function (t, j) {
          if (!match(t)) { return; }
          var pairs = index.hits[j];
          for (var i = 0; i < pairs.length; i += 2) { hits.push([layer, pairs[i], pairs[i + 1], t]); }
        });
      });
      listHits(hits, text, exact);
    }, function (err) { say(err.message + ": the data folder must stay beside the page."); });
  }

  function listHits(hits, text, exact) {
    var how = exact ? "exactly “" + shown(text.replace(/\u2423/g, " ")) + "”" : "containing “" + text.trim() + "”, any case";
    if (!hits.length) { say("No neuron has a core token " + how + "."); return; }
    hits.sort(function (a, b) { return a[2] - b[2] || a[0] - b[0] || a[1] - b[1]; });
    var limit = 200;
    say(hits.length + " core-token match" + (hits.length === 1 ? "" : "es") + " (" + how +
      ")" + (hits.length > limit ? "; the " + limit + " best-ranked are listed" : "") + ".");
    var list = h("ol", { cls: "token-hits", id: "nb-token-hits" });
    hits.slice(0, limit).forEach(function (hit) {
      var link = h("a", { href: "#L" + hit[0] + "N" + hit[1], text: "layer " + hit[0] + " · neuron " + hit[1] });
      list.appendChild(h("li", {}, [link, h("span", { cls: "muted", text: " — “" + shown(hit[3]) + "” at rank " + hit[2] })]));
    });
    results.appendChild(list);
  }

  function fromHash(scroll) {
    var m = /^#L(\d+)N(\d+)$/.exec(window.location.hash);
    return m ? showNeuron(Number(m[1]), Number(m[2]), scroll) : Promise.resolve(false);
  }

  DATA.layers.forEach(function (layer) {
    layerSelect.appendChild(h("option", { value: String(layer), text: "layer " + layer }));
  });
  layerSelect.addEventListener("change", fillNeuronList);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var layer = Number(layerSelect.value), neuron = parseInt(neuronInput.value, 10);
    if (isNaN(neuron)) { say("Enter a neuron index."); return; }
    showNeuron(layer, neuron, true).then(function (ok) {
      if (ok) { history.replaceState(null, "", "#L" + layer + "N" + neuron); }
    });
  });
  tokenForm.addEventListener("submit", function (event) {
    event.preventDefault();
    searchToken(tokenInput.value, tokenMode.value === "exact");
  });
  window.addEventListener("hashchange", function () { fromHash(true); });
  fillNeuronList();
  fillPicks();
  var first = DATA.layers.length ? DATA.picks[String(DATA.layers[0])] : null;
  var start = /^#L\d+N\d+$/.test(window.location.hash) ? fromHash(true)
    : first && first.length ? showNeuron(DATA.layers[0], first[0][0], false) : Promise.resolve();
  start.then(function () { document.documentElement.setAttribute("data-browser-ready", "1"); });
})();
