// Package browsertest holds the web console's browser tests: headless
// Chromium (Debian's chromium package, at /usr/bin/chromium), driven with
// chromedp, against the real server on a real listener with the embedded
// store, and for the audio test with its media plane (Chromium's fake
// microphone is the caller). The tests skip when Chromium is absent. It
// has no code of its own.
package browsertest
