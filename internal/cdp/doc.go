// Package cdp drives a real headless Chromium over the DevTools protocol
// for tide's browser tests: Start launches the browser (and removes it and
// its profile when the test ends), and a Session navigates, evaluates
// JavaScript, polls the page and takes screenshots.
//
// It is test support: only _test.go files import it. It speaks WebSocket
// (RFC 6455) itself, so it needs nothing beyond the standard library, and
// it must not depend on any other tide package.
package cdp
