import assert from "node:assert/strict";
import { test } from "node:test";

import {
  gatewayPattern, hostBlocked, isWebUrl, normaliseGateway, normaliseHost, pageUrl,
} from "../../../extension/urls.js";

test("a page stands for its canonical URL only on its own site", () => {
  const tab = "https://www.example.com/post?id=3&utm_source=x#comments";
  assert.equal(pageUrl(tab, "https://example.com/post/3"), "https://example.com/post/3");
  assert.equal(pageUrl(tab, "https://blog.www.example.com/p#x"), "https://blog.www.example.com/p");
  assert.equal(pageUrl(tab, "https://attacker.example.net/mine"),
    "https://www.example.com/post?id=3&utm_source=x");
  assert.equal(pageUrl(tab, "javascript:alert(1)"), "https://www.example.com/post?id=3&utm_source=x");
  assert.equal(pageUrl(tab, null), "https://www.example.com/post?id=3&utm_source=x");
  assert.equal(pageUrl("chrome://settings/", "https://example.com/"), null);
  assert.equal(pageUrl(undefined, "https://example.com/"), null);
});

test("only http and https pages are flattrable", () => {
  assert.ok(isWebUrl("http://127.0.0.1:8080/x"));
  for (const url of ["chrome://version", "about:blank", "file:///etc/passwd", "moz-extension://x/",
    "mailto:a@b.c", "", null, `https://e.com/${"a".repeat(2100)}`]) {
    assert.equal(isWebUrl(url), false, url);
  }
});

test("blocked hosts cover their subdomains, not look-alikes", () => {
  const blocklist = ["github.com"];
  assert.ok(hostBlocked("https://github.com/me/private", blocklist));
  assert.ok(hostBlocked("https://gist.github.com/x", blocklist));
  assert.equal(hostBlocked("https://notgithub.com/", blocklist), false);
  assert.equal(normaliseHost(" *.GitHub.com. "), "github.com");
  assert.equal(normaliseHost("https://github.com/"), null);
});

test("gateway addresses and their host permission (no port: Chrome ignores it)", () => {
  assert.equal(normaliseGateway(" https://flattr.example.org/ "), "https://flattr.example.org");
  assert.equal(normaliseGateway("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  assert.equal(normaliseGateway("ftp://x"), null);
  assert.equal(normaliseGateway("https://user:pw@x.org"), null);
  assert.equal(gatewayPattern("http://127.0.0.1:8080"), "http://127.0.0.1/*");
  assert.equal(gatewayPattern("https://flattr.example.org/base"), "https://flattr.example.org/*");
});
