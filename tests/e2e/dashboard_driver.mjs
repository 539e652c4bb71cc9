// dashboard_driver.mjs - drives Debian's chromium (headless) through
// playwright-core for tests/e2e/test_dashboard.py.  One command per line
// on stdin, one JSON answer per line on stdout:
//
//   {"cmd":"open","url":U}                 -> {"ok":true}
//   {"cmd":"wait","expr":JS,"timeout":ms}  -> {"ok":true,"value":V}
//        (until the expression is truthy; V is its value)
//   {"cmd":"eval","expr":JS}               -> {"ok":true,"value":V}
//   {"cmd":"fill","selector":S,"value":T}  -> {"ok":true}
//   {"cmd":"click","selector":S}           -> {"ok":true}
//   {"cmd":"screenshot","path":P,"width":W,"height":H}
//   {"cmd":"log"}   -> {"ok":true,"value":[console errors, page errors]}
//   {"cmd":"quit"}
//
// A failed command answers {"ok":false,"error":"..."}.  The browser is
// CHROMIUM (default /usr/bin/chromium); playwright-core comes from
// tests/node_modules (make test-tools).
import { chromium } from "playwright-core";
import readline from "node:readline";

const browser = await chromium.launch({
	executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
	headless: true,
	// The sandbox needs user namespaces, which a root CI job lacks.
	args: process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [],
});
const context = await browser.newContext({
	viewport: { width: 1280, height: 900 },
	reducedMotion: "reduce",
});
const page = await context.newPage();
const problems = [];
page.on("console", (m) => {
	if (m.type() === "error")
		problems.push("console: " + m.text());
});
page.on("pageerror", (e) => problems.push("pageerror: " + e.message));

async function run(c) {
	switch (c.cmd) {
	case "open":
		await page.goto(c.url, { waitUntil: "load" });
		return null;
	case "wait": {
		// Polled from here: waitForFunction compiles the predicate
		// in the page, which the page's CSP (no eval) refuses.
		const end = Date.now() + (c.timeout || 15000);
		for (;;) {
			const v = await page.evaluate(c.expr);
			if (v)
				return v;
			if (Date.now() > end)
				throw new Error("timed out waiting for " + c.expr);
			await new Promise((r) => setTimeout(r, 100));
		}
	}
	case "eval":
		return await page.evaluate(c.expr);
	case "fill":
		await page.fill(c.selector, c.value);
		return null;
	case "click":
		await page.click(c.selector);
		return null;
	case "screenshot":
		if (c.width && c.height)
			await page.setViewportSize({ width: c.width,
			    height: c.height });
		await page.screenshot({ path: c.path, fullPage: !!c.full });
		return null;
	case "log":
		return problems.splice(0);
	default:
		throw new Error("unknown command " + c.cmd);
	}
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
	if (!line.trim())
		continue;
	const c = JSON.parse(line);
	if (c.cmd === "quit")
		break;
	let answer;
	try {
		answer = { ok: true, value: await run(c) };
	} catch (e) {
		answer = { ok: false, error: String(e && e.message || e) };
	}
	process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
