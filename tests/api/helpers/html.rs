//! Reading the hosted pages (`/ui`) as a test does: plain string searches
//! over the HTML the templates draw, kept in one place so the tests say
//! what they look for (a form's token, an input's value, the error next to
//! a field) rather than how to find it.
//!
//! The templates write an input's `name="…"` right before its `value="…"`,
//! a visible field's `id="…"` right before its `name`, and each field's
//! error as an element with the id `{field}-error`; these functions rely on
//! that and on nothing else.

/// The `value` of the first input named `name` (tokens and ids: nothing
/// that HTML-escaping would change; see [`unescape`] otherwise). Panics,
/// showing the page, when there is none.
pub fn input_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no input {name} in\n{html}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Every value of the inputs named `name`, in page order.
pub fn input_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!("name=\"{name}\" value=\"");
    html.match_indices(&marker)
        .map(|(i, _)| {
            html[i + marker.len()..]
                .split('"')
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

/// The hidden `form_token` of an anonymous form (sign-in, sign-up, ...).
pub fn form_token(html: &str) -> String {
    input_value(html, "form_token")
}

/// The hidden `csrf_token` of a signed-in form (the account page's).
pub fn csrf_token(html: &str) -> String {
    input_value(html, "csrf_token")
}

/// The opening tag of the input with the id `id`, from its `id` attribute
/// up to (not including) its `>`: where its other attributes are.
pub fn input_tag<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\" name="))
        .unwrap_or_else(|| panic!("no input #{id} in\n{html}"));
    let tag = &html[start..];
    &tag[..tag.find('>').unwrap()]
}

/// Whether a `<label>` names the field `id`.
pub fn has_label_for(html: &str, id: &str) -> bool {
    html.contains(&format!("<label for=\"{id}\">"))
}

/// The text inside the element with the id `id` (up to its first `<`),
/// trimmed. Panics, showing the page, when there is no such element.
pub fn text_of(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in\n{html}"));
    let after = &html[start..];
    let open = after.find('>').unwrap() + 1;
    after[open..].split('<').next().unwrap().trim().to_owned()
}

/// The id of the error drawn next to the field `id`.
pub fn error_id(field: &str) -> String {
    format!("{field}-error")
}

/// Whether the page draws an error next to the field `id`.
pub fn has_field_error(html: &str, field: &str) -> bool {
    html.contains(&format!("id=\"{}\"", error_id(field)))
}

/// The error text next to the field `id`. Panics when there is none.
pub fn field_error(html: &str, field: &str) -> String {
    text_of(html, &error_id(field))
}

/// Whether an input points at the error of the field `id` for screen
/// readers (`aria-describedby`).
pub fn describes_error(html: &str, field: &str) -> bool {
    html.contains(&format!("aria-describedby=\"{}\"", error_id(field)))
}

/// Whether the page shows an alert (`role="alert"`): a form-wide error.
pub fn has_alert(html: &str) -> bool {
    html.contains("role=\"alert\"")
}

/// The markup from the element with the id `id` up to (not including) the
/// first `end` after it, e.g. a list up to its `</ul>`.
pub fn element_until<'a>(html: &'a str, id: &str, end: &str) -> &'a str {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in\n{html}"));
    let rest = &html[start..];
    &rest[..rest
        .find(end)
        .unwrap_or_else(|| panic!("no {end} after #{id}"))]
}

/// The first link target (`href`) that starts with `prefix`, unescaped
/// (`&amp;` read as `&`). Panics when there is none.
pub fn href_starting_with(html: &str, prefix: &str) -> String {
    let marker = format!("href=\"{prefix}");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no link to {prefix} in\n{html}"))
        + "href=\"".len();
    html[start..]
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&")
}

/// Text as the pages draw it (HTML-escaped).
pub fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// An attribute value as a browser reads it: the escapes the templates
/// write (`&#x2f;` for `/`, then `&amp;`) undone.
pub fn unescape(value: &str) -> String {
    value.replace("&#x2f;", "/").replace("&amp;", "&")
}
