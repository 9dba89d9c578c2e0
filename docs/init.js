// Starts Swagger UI on this server's own OpenAPI document. It is a file of
// its own rather than an inline script so that the page's
// Content-Security-Policy can allow scripts from this server only.
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  // No validator badge: it would send the document to another host.
  validatorUrl: null,
  // Ignore ?url= and other settings in the page's address, so a link
  // cannot make this page load a document from elsewhere.
  queryConfigEnabled: false,
  // Keep the token given to "Authorize" across reloads of the page.
  persistAuthorization: true,
  // Every operation is ready to send, with no "Try it out" click first.
  tryItOutEnabled: true,
  deepLinking: true,
  displayRequestDuration: true,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
