// confwatch, in the admin: names for Django's autocompletes (select2 4.0.13, Django's).
// select2 draws its controls without their form field's label: a search field (the
// inline one of a multiple select, such as a subscription's conferences, and the
// dropdown's of a single select while it is open) has no name at all, and a single
// select's box is named by its value alone, so an empty one has none. Each is labelled
// by the field's <label> ("Conferences"; a single select's box reads "Account: staff").
// Loaded on every admin page (templates/admin/base_site.html), where the CSP allows
// scripts from our own origin only.
(function () {
  "use strict";

  // The <select> a select2 control belongs to: select2 puts its container right after
  // the select, and names an open search field's results "select2-<select id>-results".
  function selectOf(control) {
    const container = control.closest(".select2-container");
    const before = container && container.previousElementSibling;
    if (before && before.tagName === "SELECT") return before;
    const results = /^select2-(.+)-results$/.exec(control.getAttribute("aria-controls") || "");
    return results ? document.getElementById(results[1]) : null;
  }

  // The id of the select's <label>, given one when it has none; null without a label
  // (an inline row's select, labelled by its column).
  function labelIdOf(select) {
    const label = select.id && document.querySelector('label[for="' + CSS.escape(select.id) + '"]');
    if (!label) return null;
    label.id = label.id || select.id + "-label";
    return label.id;
  }

  function nameControls() {
    const fields = ".select2-search__field:not([aria-label]):not([aria-labelledby])";
    for (const field of document.querySelectorAll(fields)) {
      const select = selectOf(field);
      if (!select) continue;
      const labelId = labelIdOf(select);
      if (labelId) field.setAttribute("aria-labelledby", labelId);
      else field.setAttribute("aria-label", "Search " + (select.dataset.fieldName || "").replace(/_/g, " "));
    }
    for (const box of document.querySelectorAll(".select2-selection--single:not([data-labelled])")) {
      const select = selectOf(box);
      const labelId = select && labelIdOf(select);
      if (!labelId) continue;
      box.dataset.labelled = "";
      // The box reads the label, then the value (the element it was labelled by), which
      // is a textbox of its own that select2 leaves unnamed while empty.
      const value = box.getAttribute("aria-labelledby") || "";
      box.setAttribute("aria-labelledby", (labelId + " " + value).trim());
      const rendered = box.querySelector(".select2-selection__rendered");
      if (rendered) rendered.setAttribute("aria-labelledby", labelId);
    }
    // An open single select's box owns its results list (aria-owns, select2's ARIA 1.0);
    // ARIA 1.2 wants an expanded combobox to name it in aria-controls (axe:
    // aria-required-attr).
    for (const box of document.querySelectorAll(".select2-selection--single")) {
      const owns = box.getAttribute("aria-owns");
      if (owns && box.getAttribute("aria-controls") !== owns) box.setAttribute("aria-controls", owns);
      if (!owns && box.hasAttribute("aria-controls")) box.removeAttribute("aria-controls");
    }
  }

  // select2 draws its controls after this script ran, and again when a dropdown opens or
  // an inline row is added: name them whenever the page changes.
  new MutationObserver(nameControls).observe(document.documentElement, {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["aria-controls", "aria-owns"],
  });
  document.addEventListener("DOMContentLoaded", nameControls);
})();
