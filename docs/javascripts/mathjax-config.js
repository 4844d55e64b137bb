// MathJax 3 for pymdownx.arithmatex (generic mode): typeset only the math arithmatex marks.
// The MathJax script itself is bundled into the built site by docs/hooks.py (no CDN).
window.MathJax = {
  tex: {
    inlineMath: [["\\(", "\\)"]],
    displayMath: [["\\[", "\\]"]],
    processEscapes: true,
    processEnvironments: true
  },
  options: {
    ignoreHtmlClass: ".*|",
    processHtmlClass: "arithmatex"
  }
};
