import assert from "node:assert/strict";
import { test } from "node:test";

import {
  gatewayPattern, hasQuery, hostBlocked, isPrivateUrl, isWebUrl, normaliseGateway, normaliseHost,
  pageUrl,
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

test("addresses inside the member's machine or network are private", () => {
  for (const url of [
    "http://localhost:3000/", "http://LOCALHOST./x", "http://app.localhost/", "http://127.0.0.1/",
    "http://127.8.9.1:8080/admin", "http://0x7f.1/", "http://2130706433/", "http://0.0.0.0/",
    "http://10.1.2.3/", "http://172.16.0.1/", "http://172.31.255.255/", "http://192.168.1.1/router",
    "http://169.254.169.254/latest/meta-data", "http://100.64.0.1/", "http://[::1]/",
    "http://[::]/", "http://[fe80::1]/", "http://[fd12:3456::1]/", "http://[fc00::1]/",
    "http://[::ffff:127.0.0.1]/", "http://[::ffff:192.168.0.1]/", "http://printer.local/",
    "https://wiki.corp.internal/", "http://nas.lan/", "http://router.home.arpa/",
    "http://intranet/", "http://jira/browse/X-1", "https://git.example.internal./repo",
    "not a url", "file:///etc/passwd",
  ]) {
    assert.equal(isPrivateUrl(url), true, url);
  }
  for (const url of [
    "https://example.com/", "https://github.com/me/repo", "http://93.184.216.34/",
    "http://172.32.0.1/", "http://192.169.0.1/", "http://[2606:4700::1111]/",
    "http://[::ffff:8.8.8.8]/", "https://local.example.org/", "https://my.localhost-shop.com/",
    "https://news.example.org:8443/a?b=c",
  ]) {
    assert.equal(isPrivateUrl(url), false, url);
  }
});

test("an address with a query, even an empty one, is recognised", () => {
  for (const url of [
    "https://www.youtube.com/watch?v=dQw4w9WgXcQ", "https://example.com/post?session=secret#c",
    "https://example.com/?", "https://example.com/?#top", "https://example.com/a?b",
  ]) {
    assert.equal(hasQuery(url), true, url);
  }
  for (const url of [
    "https://example.com/", "https://example.com/post#?not-a-query", "https://example.com/a%3Fb",
    "https://example.com/a#",
  ]) {
    assert.equal(hasQuery(url), false, url);
  }
});
