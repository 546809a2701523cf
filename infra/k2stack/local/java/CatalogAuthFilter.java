/*
 * Authentication and authorisation in front of Iceberg's RESTCatalogServlet, per the Iceberg
 * REST specification's OAuth2 flow, so standard clients need no K2-specific code:
 *
 *   POST /v1/oauth/tokens   grant_type=client_credentials, client_id + client_secret in the
 *                           form (pyiceberg's and Java's `credential`) or HTTP Basic (RFC 6749
 *                           2.3.1, pyiceberg's `oauth2` auth manager); also the token-exchange
 *                           grant with a valid subject_token (how Java clients refresh). Answers
 *                           access_token, token_type=bearer, expires_in, issued_token_type;
 *                           bad client credentials: 401 {"error": "invalid_client"}.
 *   every other route       "Authorization: Bearer <token>" or 401 (NotAuthorizedException);
 *                           a principal outside its rights: 403 (ForbiddenException).
 *
 * Nothing secret is logged: neither credentials, tokens nor request bodies; a refusal is
 * logged with the principal and route only.
 */
package dev.k2.stack;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.k2.stack.CatalogTokens.Issued;
import dev.k2.stack.CatalogTokens.Principal;
import jakarta.servlet.Filter;
import jakarta.servlet.FilterChain;
import jakarta.servlet.ReadListener;
import jakarta.servlet.ServletException;
import jakarta.servlet.ServletInputStream;
import jakarta.servlet.ServletRequest;
import jakarta.servlet.ServletResponse;
import jakarta.servlet.http.HttpServletRequest;
import jakarta.servlet.http.HttpServletRequestWrapper;
import jakarta.servlet.http.HttpServletResponse;
import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import java.util.Optional;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

final class CatalogAuthFilter implements Filter {
  private static final Logger LOG = LoggerFactory.getLogger(CatalogAuthFilter.class);
  private static final String TOKEN_PATH = "/v1/oauth/tokens";
  private static final String TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange";
  private static final String ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token";
  private static final ObjectMapper JSON = new ObjectMapper();

  private final CatalogTokens tokens;
  private final CatalogPolicy policy;

  CatalogAuthFilter(CatalogTokens tokens, CatalogPolicy policy) {
    this.tokens = tokens;
    this.policy = policy;
  }

  @Override
  public void doFilter(ServletRequest req, ServletResponse res, FilterChain chain)
      throws IOException, ServletException {
    HttpServletRequest request = (HttpServletRequest) req;
    HttpServletResponse response = (HttpServletResponse) res;
    String uri = request.getRequestURI();
    if (TOKEN_PATH.equals(uri) && "POST".equals(request.getMethod())) {
      token(request, response);
      return;
    }
    Optional<Principal> principal = bearer(request.getHeader("Authorization"));
    if (principal.isEmpty()) {
      response.setHeader("WWW-Authenticate", "Bearer");
      error(response, 401, "NotAuthorizedException", "a valid bearer token is required");
      return;
    }
    List<String> path = segments(uri);
    String method = request.getMethod();
    HttpServletRequest forwarded = request;
    JsonNode body = null;
    if (CatalogPolicy.needsBody(principal.get(), method, path)) {
      byte[] bytes = request.getInputStream().readAllBytes();
      body = bytes.length == 0 ? JSON.createObjectNode() : JSON.readTree(bytes);
      forwarded = new Replayed(request, bytes);
    }
    JsonNode parsed = body;
    String why;
    try {
      why = policy.deny(principal.get(), method, path, () -> parsed);
    } catch (RuntimeException e) {
      // A commit to a table that does not exist, or a body we cannot judge: refuse rather
      // than guess; the servlet would have refused an invalid body anyway.
      why = principal.get().clientId() + " may not make this change: " + e.getMessage();
    }
    if (why != null) {
      LOG.info("refused {} {} for {}", method, uri, principal.get().clientId());
      error(response, 403, "ForbiddenException", why);
      return;
    }
    chain.doFilter(forwarded, response);
  }

  // The request path after /v1, as URL-encoded segments (a namespace may contain %1F).
  private static List<String> segments(String uri) {
    String rest = uri.startsWith("/v1/") ? uri.substring(4) : uri;
    return Arrays.asList(rest.split("/", -1));
  }

  private Optional<Principal> bearer(String header) {
    if (header == null || !header.regionMatches(true, 0, "Bearer ", 0, 7)) {
      return Optional.empty();
    }
    return tokens.verify(header.substring(7).trim());
  }

  private void token(HttpServletRequest request, HttpServletResponse response)
      throws IOException {
    String grant = request.getParameter("grant_type");
    Optional<Principal> principal;
    if ("client_credentials".equals(grant)) {
      String[] client = basic(request.getHeader("Authorization"));
      if (client == null) {
        client =
            new String[] {request.getParameter("client_id"), request.getParameter("client_secret")};
      }
      principal = tokens.authenticate(client[0], client[1]);
    } else if (TOKEN_EXCHANGE.equals(grant)) {
      String subject = request.getParameter("subject_token");
      principal = subject == null ? Optional.empty() : tokens.verify(subject);
    } else {
      oauthError(response, 400, "unsupported_grant_type", "grant_type " + grant + " is not supported");
      return;
    }
    if (principal.isEmpty()) {
      LOG.info("refused a token request ({})", grant);
      oauthError(response, 401, "invalid_client", "client authentication failed");
      return;
    }
    Issued issued = tokens.issue(principal.get());
    ObjectNode body = JSON.createObjectNode();
    body.put("access_token", issued.token());
    body.put("token_type", "bearer");
    body.put("expires_in", issued.expiresInSeconds());
    body.put("issued_token_type", ACCESS_TOKEN_TYPE);
    String scope = request.getParameter("scope");
    if (scope != null) {
      body.put("scope", scope);
    }
    response.setHeader("Cache-Control", "no-store");
    write(response, 200, body);
  }

  // RFC 6749 2.3.1: "Basic base64(client_id:client_secret)"; null when absent or malformed.
  private static String[] basic(String header) {
    if (header == null || !header.regionMatches(true, 0, "Basic ", 0, 6)) {
      return null;
    }
    String decoded;
    try {
      decoded = new String(Base64.getDecoder().decode(header.substring(6).trim()), StandardCharsets.UTF_8);
    } catch (IllegalArgumentException e) {
      return null;
    }
    int colon = decoded.indexOf(':');
    return colon < 0 ? null : new String[] {decoded.substring(0, colon), decoded.substring(colon + 1)};
  }

  private static void oauthError(HttpServletResponse response, int status, String error, String why)
      throws IOException {
    ObjectNode body = JSON.createObjectNode();
    body.put("error", error);
    body.put("error_description", why);
    write(response, status, body);
  }

  // The Iceberg REST spec's ErrorModel: {"error": {"message", "type", "code"}}.
  private static void error(HttpServletResponse response, int status, String type, String message)
      throws IOException {
    ObjectNode body = JSON.createObjectNode();
    ObjectNode error = body.putObject("error");
    error.put("message", message);
    error.put("type", type);
    error.put("code", status);
    write(response, status, body);
  }

  private static void write(HttpServletResponse response, int status, JsonNode body)
      throws IOException {
    response.setStatus(status);
    response.setContentType("application/json");
    response.setCharacterEncoding("UTF-8");
    response.getOutputStream().write(JSON.writeValueAsBytes(body));
  }

  /** The request with its body read once by the filter, replayed to the servlet. */
  private static final class Replayed extends HttpServletRequestWrapper {
    private final byte[] body;

    Replayed(HttpServletRequest request, byte[] body) {
      super(request);
      this.body = body;
    }

    @Override
    public ServletInputStream getInputStream() {
      ByteArrayInputStream in = new ByteArrayInputStream(body);
      return new ServletInputStream() {
        @Override
        public int read() {
          return in.read();
        }

        @Override
        public int read(byte[] b, int off, int len) {
          return in.read(b, off, len);
        }

        @Override
        public boolean isFinished() {
          return in.available() == 0;
        }

        @Override
        public boolean isReady() {
          return true;
        }

        @Override
        public void setReadListener(ReadListener listener) {
          throw new UncheckedIOException(new IOException("async reads are not supported"));
        }
      };
    }

    @Override
    public BufferedReader getReader() {
      return new BufferedReader(new InputStreamReader(getInputStream(), StandardCharsets.UTF_8));
    }
  }
}
