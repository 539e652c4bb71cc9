/*
 * app.js - the salesd live dashboard.  Plain browser JavaScript, no
 * framework, no build step: it loads the first state from the REST API
 * (GET /analytics, /orders, /promotions, /recommendations; a 404 means
 * that module is not loaded), then follows the WebSocket on /ws and
 * reconnects with exponential backoff when it drops.
 *
 * The token, when the server wants one, comes from the URL fragment
 * (#token=...), which the browser never sends: REST gets it as
 * "Authorization: Bearer", the WebSocket as ?token= (a browser cannot
 * set headers on a WebSocket).
 *
 * Figures are written as text plus a data-value attribute holding the
 * raw number; the chart keeps its series in data-series (JSON), so that
 * tests and tools read what is drawn.
 */
"use strict";

(function () {
	var WINDOW_S = 300;		/* the chart's five minutes */
	var FEED_MAX = 20;
	var BACKOFF_MIN_MS = 500;
	var BACKOFF_MAX_MS = 30000;
	var REFRESH_ANALYTICS_MS = 5000;	/* the last minute slides */
	var REFRESH_RECS_MS = 30000;
	var RECS_AFTER_ORDER_MS = 10000;
	/* What the page listens to, as far as the server sends it. */
	var wanted = ["newOrder", "updateAnalytics", "updatePromotions"];

	var token = null;
	var ws = null;
	var attempt = 0;
	var retryTimer = null;
	var retryAt = 0;
	var countdown = null;
	var skewMs = 0;			/* server clock - ours */
	var buckets = new Map();	/* epoch second -> revenue */
	var seen = new Set();		/* order ids counted in the chart */
	var feed = [];			/* newest first */
	var ordersEnabled = true;
	var analyticsEnabled = true;
	var recsAt = 0;			/* when recommendations were asked */
	var recsTimer = null;		/* the next ask, after new orders */

	function $(id) {
		return document.getElementById(id);
	}

	/* -- formatting ------------------------------------------------- */

	var money = new Intl.NumberFormat("en-US",
	    { minimumFractionDigits: 2, maximumFractionDigits: 2 });
	var count = new Intl.NumberFormat("en-US",
	    { maximumFractionDigits: 0 });

	function signed(v, fmt) {
		if (v > 0)
			return "▲ +" + fmt.format(v);
		if (v < 0)
			return "▼ −" + fmt.format(-v);
		return "■ " + fmt.format(0);
	}

	function setNum(id, v, text) {
		var el = $(id);

		el.dataset.value = String(v);
		el.textContent = text;
	}

	function setDelta(id, v, fmt) {
		var el = $(id);

		el.dataset.value = String(v);
		el.textContent = signed(v, fmt) + " vs previous minute";
		el.classList.toggle("up", v > 0);
		el.classList.toggle("down", v < 0);
	}

	function timeOf(iso) {
		var d = new Date(iso);

		return isNaN(d) ? "" : d.toLocaleTimeString([], { hour12: false });
	}

	function clear(el) {
		while (el.firstChild)
			el.removeChild(el.firstChild);
	}

	function li(text, cls) {
		var e = document.createElement("li");

		if (cls)
			e.className = cls;
		e.textContent = text;
		return e;
	}

	function state(id, text) {
		var el = $(id);

		el.hidden = !text;
		el.textContent = text || "";
	}

	/* -- connection state ------------------------------------------- */

	function showConn(s, text) {
		var el = $("conn");

		el.dataset.state = s;
		el.textContent = text;
		document.body.classList.toggle("offline", s !== "live");
	}

	/* -- REST --------------------------------------------------------- */

	function headers(extra) {
		var h = Object.assign({ "Accept": "application/json" }, extra);

		if (token)
			h["Authorization"] = "Bearer " + token;
		return h;
	}

	/*
	 * Resolves { status, body } (body parsed when JSON); rejects only
	 * when the server could not be reached.
	 */
	function api(method, path, body, extra) {
		var init = { method: method, headers: headers(extra),
		    cache: "no-store" };

		if (body !== undefined) {
			init.headers["Content-Type"] = "application/json";
			init.body = JSON.stringify(body);
		}
		return fetch(path, init).then(function (r) {
			return r.text().then(function (t) {
				var b = null;

				try {
					b = t ? JSON.parse(t) : null;
				} catch (e) {
					b = t;
				}
				return { status: r.status, body: b };
			});
		});
	}

	/* The API's own words for an error answer. */
	function apiMessage(res) {
		var e = res.body && res.body.error;

		if (e && e.message)
			return e.message + (e.field ? " (" + e.field + ")" : "");
		return "HTTP " + res.status;
	}

	/*
	 * GET path and hand the body to ok.  404: the module behind it is
	 * not loaded ("not enabled", not an error).  401/403: no or a wrong
	 * token.
	 */
	function load(path, ok, stateId, what) {
		var asked = token;

		return api("GET", path).then(function (res) {
			/* Asked with a token since replaced: not news. */
			if (asked !== token)
				return null;
			if (res.status === 200) {
				$("auth-note").hidden = true;
				ok(res.body);
				return true;
			}
			if (res.status === 404) {
				state(stateId, what + " not enabled on this " +
				    "server (module not loaded).");
				return false;
			}
			if (res.status === 401 || res.status === 403)
				$("auth-note").hidden = false;
			state(stateId, apiMessage(res));
			return false;
		}, function () {
			state(stateId, "Could not reach the server.");
			return false;
		});
	}

	function loadAll() {
		load("/analytics", function (a) {
			analyticsEnabled = true;
			showAnalytics(a);
		}, "analytics-state", "Analytics").then(function (ok) {
			if (ok === false)
				analyticsEnabled = false;
		});
		load("/orders?limit=1000", function (b) {
			var i, orders = (b && b.orders) || [];

			ordersEnabled = true;
			/* Oldest first, so the feed ends newest first. */
			for (i = orders.length - 1; i >= 0; i--)
				addOrder(orders[i]);
		}, "feed-state", "Orders").then(function (ok) {
			if (ok === false)
				ordersEnabled = false;
		});
		load("/promotions", showPromotions, "promo-state",
		    "Promotions");
		loadRecommendations();
	}

	function loadRecommendations() {
		if (recsTimer) {
			clearTimeout(recsTimer);
			recsTimer = null;
		}
		recsAt = Date.now();
		load("/recommendations", showRecommendations, "rec-state",
		    "Recommendations");
	}

	/*
	 * New sales may change them: ask again, at most once every
	 * RECS_AFTER_ORDER_MS, and late rather than never, so that the
	 * last orders of a burst are heard too (the server caches anyway).
	 */
	function recommendationsSoon() {
		if (recsTimer)
			return;
		recsTimer = setTimeout(loadRecommendations, Math.max(0,
		    recsAt + RECS_AFTER_ORDER_MS - Date.now()));
	}

	/* -- analytics ---------------------------------------------------- */

	function showAnalytics(a) {
		var asOf = Date.parse(a.asOf), tops = $("top"), i, p, e, bar,
		    max = 0, prevCount;

		if (!isNaN(asOf))
			skewMs = asOf - Date.now();
		state("analytics-state", "");
		setNum("kpi-revenue", a.totalRevenue,
		    money.format(a.totalRevenue));
		setNum("kpi-orders", a.totalOrders, count.format(a.totalOrders));
		setNum("kpi-minute-revenue", a.revenueLastMinute,
		    money.format(a.revenueLastMinute));
		setDelta("kpi-minute-change", a.revenueChangeLastMinute, money);
		setNum("kpi-minute-orders", a.orderCountLastMinute,
		    count.format(a.orderCountLastMinute));
		prevCount = a.orderCountPreviousMinute;
		if (typeof prevCount === "number")
			setDelta("kpi-minute-orders-change",
			    a.orderCountLastMinute - prevCount, count);

		clear(tops);
		(a.topProducts || []).forEach(function (t) {
			max = Math.max(max, t.revenue);
		});
		for (i = 0; i < (a.topProducts || []).length; i++) {
			p = a.topProducts[i];
			e = document.createElement("li");
			e.dataset.product = p.product_id;
			e.dataset.revenue = String(p.revenue);
			e.dataset.quantity = String(p.quantity);
			var name = document.createElement("span");
			name.className = "name";
			name.textContent = p.product_id;
			var fig = document.createElement("span");
			fig.className = "num";
			fig.textContent = money.format(p.revenue) + " · " +
			    count.format(p.quantity) + " pcs";
			bar = document.createElement("span");
			bar.className = "bar";
			bar.style.width = (max > 0 ? 100 * p.revenue / max : 0) +
			    "%";
			e.appendChild(name);
			e.appendChild(fig);
			e.appendChild(bar);
			tops.appendChild(e);
		}
		state("top-state", tops.children.length ? "" : "No sales yet.");
	}

	/* -- orders: the feed and the chart ------------------------------ */

	function addOrder(o) {
		var t, sec, rev;

		if (o == null || typeof o.id !== "number" || seen.has(o.id))
			return;
		seen.add(o.id);
		rev = o.price * o.quantity;
		t = Date.parse(o.received_at || o.date);
		if (!isNaN(t)) {
			sec = Math.floor(t / 1000);
			buckets.set(sec, (buckets.get(sec) || 0) + rev);
		}
		feed.push(o);
		feed.sort(function (a, b) { return b.id - a.id; });
		if (feed.length > FEED_MAX)
			feed.length = FEED_MAX;
		drawFeed();
		drawChart();
	}

	function drawFeed() {
		var ol = $("feed"), i, o, e;

		clear(ol);
		for (i = 0; i < feed.length; i++) {
			o = feed[i];
			e = document.createElement("li");
			e.dataset.id = String(o.id);
			e.dataset.product = o.product_id;
			e.dataset.revenue = String(o.price * o.quantity);
			var what = document.createElement("span");
			what.className = "name";
			what.textContent = "#" + o.id + " · " + o.product_id;
			var total = document.createElement("span");
			total.className = "num total";
			total.textContent = money.format(o.price * o.quantity);
			var when = document.createElement("time");
			when.className = "num";
			when.dateTime = o.received_at || o.date;
			when.textContent = timeOf(o.received_at || o.date);
			var detail = document.createElement("span");
			detail.className = "num detail";
			detail.textContent = count.format(o.quantity) + " × " +
			    money.format(o.price);
			e.appendChild(what);
			e.appendChild(total);
			e.appendChild(when);
			e.appendChild(detail);
			ol.appendChild(e);
		}
		state("feed-state", feed.length ? "" : ordersEnabled ?
		    "No orders yet." : $("feed-state").textContent);
	}

	function drawChart() {
		var svg = $("chart"), now = Math.floor((Date.now() + skewMs) /
		    1000), first = now - WINDOW_S + 1, series = [], max = 0,
		    total = 0, d = "", w = 600 / WINDOW_S, x, h;

		buckets.forEach(function (v, s) {
			if (s < first - 60)
				buckets.delete(s);	/* long gone */
			else if (s >= first && s <= now + 5) {
				series.push([s, Math.round(v * 100) / 100]);
				max = Math.max(max, v);
				total += v;
			}
		});
		series.sort(function (a, b) { return a[0] - b[0]; });
		series.forEach(function (p) {
			/* An order a moment ahead of our clock: at "now". */
			x = (Math.min(p[0], now) - first) * w;
			h = max > 0 ? Math.max(1, 156 * p[1] / max) : 0;
			d += "M" + x.toFixed(2) + " 160v" + (-h).toFixed(2) +
			    "h" + Math.max(w, 1).toFixed(2) + "v" +
			    h.toFixed(2) + "z";
		});
		$("chart-bars").setAttribute("d", d);
		svg.dataset.series = JSON.stringify(series);
		svg.dataset.total = String(Math.round(total * 100) / 100);
		$("chart-max").textContent = "max " + money.format(max) + "/s";
	}

	/* -- promotions and recommendations ------------------------------ */

	function sourceBadge(id, source, fallback) {
		var el = $(id);

		el.hidden = false;
		el.dataset.source = source;
		el.textContent = fallback ? "fallback: " + source : source;
		el.classList.toggle("fallback", fallback);
	}

	function showPromotions(p) {
		var w = p.weather || {}, ul = $("promotions"), fb;

		state("promo-state", "");
		fb = w.source !== "openweather";
		sourceBadge("promo-source", w.source || "unknown", fb);
		$("weather").textContent = (w.city || "") + ": " +
		    (typeof w.temperatureC === "number" ?
		    w.temperatureC.toFixed(1) + " °C, " : "") +
		    (w.condition || "unknown") +
		    (fb ? " (no live weather: rules without weather apply)" :
		    "");
		clear(ul);
		(p.promotions || []).forEach(function (r) {
			var e = li(r.message + " (" + r.discountPercent +
			    "% off " + r.category + ")");

			e.dataset.category = r.category;
			ul.appendChild(e);
		});
		if (!ul.children.length)
			state("promo-state", "No promotion applies now.");
	}

	function showRecommendations(r) {
		var ul = $("recommendations");

		state("rec-state", "");
		sourceBadge("rec-source", r.source === "fallback" ?
		    "rule-based" : r.source + (r.model ? " " + r.model : ""),
		    r.source === "fallback");
		$("rec-source").dataset.source = r.source;
		$("rec-summary").textContent = r.summary || "";
		clear(ul);
		(r.recommendations || []).forEach(function (x) {
			var e = li(x.product_id + ": " + x.action + " — " +
			    x.reason);

			e.dataset.product = x.product_id;
			ul.appendChild(e);
		});
		if (!ul.children.length)
			state("rec-state", "No recommendation yet.");
	}

	/* -- WebSocket ---------------------------------------------------- */

	function send(msg) {
		if (ws && ws.readyState === WebSocket.OPEN)
			ws.send(JSON.stringify(msg));
	}

	function onMessage(ev) {
		var m, bad;

		try {
			m = JSON.parse(ev.data);
		} catch (e) {
			return;
		}
		switch (m.type) {
		case "newOrder":
			addOrder(m.data);
			recommendationsSoon();
			break;
		case "newOrders":
			(m.data || []).forEach(addOrder);
			recommendationsSoon();
			break;
		case "updateAnalytics":
			showAnalytics(m.data);
			break;
		case "updatePromotions":
			showPromotions(m.data);
			break;
		case "subscribed":
			/* What the server agreed to send us, for tools. */
			document.body.dataset.events = (m.events || []).join(" ");
			break;
		case "error":
			/* A type this server does not send: drop it, ask again. */
			if (m.data && m.data.code === "unknown_event") {
				bad = m.data.events || [];
				wanted = wanted.filter(function (t) {
					return bad.indexOf(t) < 0;
				});
				send({ type: "subscribe", events: wanted.length ?
				    wanted : ["newOrder"] });
			}
			break;
		}
	}

	function connect() {
		var url = (location.protocol === "https:" ? "wss://" : "ws://") +
		    location.host + "/ws" + (token ? "?token=" +
		    encodeURIComponent(token) : "");

		retryTimer = null;
		showConn("connecting", "Connecting…");
		try {
			ws = new WebSocket(url);
		} catch (e) {
			scheduleRetry();
			return;
		}
		ws.onopen = function () {
			attempt = 0;
			showConn("live", "Live");
			send({ type: "subscribe", events: wanted });
			/* Catch up on what happened while we were away. */
			loadAll();
		};
		ws.onmessage = onMessage;
		ws.onclose = function () {
			ws = null;
			scheduleRetry();
		};
	}

	function scheduleRetry() {
		var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS *
		    Math.pow(2, attempt));

		attempt++;
		delay = Math.round(delay * (0.75 + Math.random() * 0.5));
		retryAt = Date.now() + delay;
		tickRetry();
		if (retryTimer)
			clearTimeout(retryTimer);
		retryTimer = setTimeout(connect, delay);
	}

	function tickRetry() {
		var s = Math.max(0, Math.ceil((retryAt - Date.now()) / 1000));

		showConn("disconnected", "Disconnected: figures may be stale. " +
		    "Retrying in " + s + " s");
	}

	/* -- the test-order form ----------------------------------------- */

	function numberOrText(v) {
		var n = Number(v);

		return v.trim() !== "" && isFinite(n) ? n : v;
	}

	function idempotencyKey() {
		var b = new Uint8Array(16);

		crypto.getRandomValues(b);
		return Array.prototype.map.call(b, function (x) {
			return (x + 256).toString(16).slice(1);
		}).join("");
	}

	function submitOrder(ev) {
		var f = ev.target, out = $("form-result"), order;

		ev.preventDefault();
		order = {
			product_id: f.product_id.value,
			quantity: numberOrText(f.quantity.value),
			price: numberOrText(f.price.value)
		};
		$("f-submit").disabled = true;
		out.className = "form-result";
		out.textContent = "Posting…";
		api("POST", "/orders", order,
		    { "Idempotency-Key": idempotencyKey() }).then(function (res) {
			if (res.status === 201) {
				out.classList.add("ok");
				out.textContent = "Stored order #" + res.body.id +
				    ".";
				addOrder(res.body);
			} else {
				out.classList.add("error");
				out.textContent = res.status === 404 ?
				    "Orders are not enabled on this server." :
				    apiMessage(res);
			}
		}, function () {
			out.classList.add("error");
			out.textContent = "Could not reach the server.";
		}).then(function () {
			$("f-submit").disabled = false;
		});
	}

	/* -- start -------------------------------------------------------- */

	function readToken() {
		var h = new URLSearchParams(location.hash.slice(1));

		token = h.get("token") || null;
	}

	function start() {
		readToken();
		window.addEventListener("hashchange", function () {
			readToken();
			if (ws) {
				ws.close();
			} else {
				/* Now, not when the backoff timer fires too. */
				if (retryTimer)
					clearTimeout(retryTimer);
				connect();
			}
		});
		$("order-form").addEventListener("submit", submitOrder);
		loadAll();
		connect();
		setInterval(function () {
			drawChart();
			if (!ws)
				tickRetry();
		}, 1000);
		setInterval(function () {
			if (analyticsEnabled)
				send({ type: "getAnalytics" });
		}, REFRESH_ANALYTICS_MS);
		setInterval(loadRecommendations, REFRESH_RECS_MS);
	}

	if (document.readyState === "loading")
		document.addEventListener("DOMContentLoaded", start);
	else
		start();
})();
