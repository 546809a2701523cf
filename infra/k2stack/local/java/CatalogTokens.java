/*
 * The catalog's principals, their client credentials, and the bearer tokens it issues them.
 *
 * Configuration (environment, read once at start; the server refuses to start without it, so
 * no stack ever runs an unauthenticated catalog):
 *   K2_CATALOG_AUTH_TOKEN_KEY      the stack's signing key (any string, generated per stack)
 *   K2_CATALOG_AUTH_ADMIN          "k2-admin:<secret>"      (required)
 *   K2_CATALOG_AUTH_INGEST         "k2-ingest:<secret>"     (optional: no login without it)
 *   K2_CATALOG_AUTH_MAINTAIN       "k2-maintain:<secret>"   (optional)
 *   K2_CATALOG_AUTH_QUERY          "k2-query:<secret>"      (optional)
 *   K2_CATALOG_AUTH_TOKEN_TTL_S    token lifetime in seconds (default 3600)
 * A credential is exactly what a standard Iceberg client takes as its `credential` property.
 *
 * Tokens are stateless: "<PRINCIPAL>.<expiry epoch s>.<nonce>.<HMAC-SHA256>", signed with a
 * key derived from the stack key AND the principal's current secret. So a token survives a
 * catalog restart, and rotating one principal's secret revokes exactly that principal's
 * outstanding tokens (rotating the stack key revokes all of them).
 */
package dev.k2.stack;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.Base64;
import java.util.EnumMap;
import java.util.HexFormat;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

final class CatalogTokens {
  static final String ENV_PREFIX = "K2_CATALOG_AUTH_";
  private static final long DEFAULT_TTL_S = 3600;
  private static final String HMAC = "HmacSHA256";

  /** What each principal may do is CatalogPolicy's business; here only who it is. */
  enum Principal {
    ADMIN,
    INGEST,
    MAINTAIN,
    QUERY;

    String clientId() {
      return "k2-" + name().toLowerCase(Locale.ROOT);
    }
  }

  /** A freshly issued token and its lifetime. */
  record Issued(String token, long expiresInSeconds) {}

  private final byte[] stackKey;
  private final Map<Principal, byte[]> secrets;
  private final long ttlSeconds;
  private final SecureRandom random = new SecureRandom();

  private CatalogTokens(byte[] stackKey, Map<Principal, byte[]> secrets, long ttlSeconds) {
    this.stackKey = stackKey;
    this.secrets = secrets;
    this.ttlSeconds = ttlSeconds;
  }

  /** The configuration above; errors name the variable, never its value. */
  static CatalogTokens fromEnv(Map<String, String> env) {
    String key = env.get(ENV_PREFIX + "TOKEN_KEY");
    if (key == null || key.isEmpty()) {
      throw new IllegalStateException(ENV_PREFIX + "TOKEN_KEY is not set: refusing to serve");
    }
    Map<Principal, byte[]> secrets = new EnumMap<>(Principal.class);
    for (Principal principal : Principal.values()) {
      String name = ENV_PREFIX + principal.name();
      String credential = env.get(name);
      if (credential == null || credential.isEmpty()) {
        continue;
      }
      String prefix = principal.clientId() + ":";
      if (!credential.startsWith(prefix) || credential.length() == prefix.length()) {
        throw new IllegalStateException(name + " must be \"" + prefix + "<secret>\"");
      }
      secrets.put(principal, credential.substring(prefix.length()).getBytes(StandardCharsets.UTF_8));
    }
    if (!secrets.containsKey(Principal.ADMIN)) {
      throw new IllegalStateException(ENV_PREFIX + "ADMIN is not set: refusing to serve");
    }
    String ttl = env.getOrDefault(ENV_PREFIX + "TOKEN_TTL_S", "" + DEFAULT_TTL_S);
    return new CatalogTokens(key.getBytes(StandardCharsets.UTF_8), secrets, Long.parseLong(ttl));
  }

  /** The principal whose client id and secret these are (constant-time secret comparison). */
  Optional<Principal> authenticate(String clientId, String secret) {
    if (clientId == null || secret == null) {
      return Optional.empty();
    }
    for (Map.Entry<Principal, byte[]> entry : secrets.entrySet()) {
      if (entry.getKey().clientId().equals(clientId)
          && MessageDigest.isEqual(entry.getValue(), secret.getBytes(StandardCharsets.UTF_8))) {
        return Optional.of(entry.getKey());
      }
    }
    return Optional.empty();
  }

  Issued issue(Principal principal) {
    long expiresAt = System.currentTimeMillis() / 1000 + ttlSeconds;
    byte[] nonce = new byte[12];
    random.nextBytes(nonce);
    String payload = principal.name() + "." + expiresAt + "." + HexFormat.of().formatHex(nonce);
    return new Issued(payload + "." + sign(principal, payload), ttlSeconds);
  }

  /** The principal a valid, unexpired token was issued to. */
  Optional<Principal> verify(String token) {
    int cut = token.lastIndexOf('.');
    if (cut < 0) {
      return Optional.empty();
    }
    String payload = token.substring(0, cut);
    String[] parts = payload.split("\\.", -1);
    if (parts.length != 3) {
      return Optional.empty();
    }
    Principal principal;
    long expiresAt;
    try {
      principal = Principal.valueOf(parts[0]);
      expiresAt = Long.parseLong(parts[1]);
    } catch (IllegalArgumentException e) {
      return Optional.empty();
    }
    if (!secrets.containsKey(principal) || expiresAt <= System.currentTimeMillis() / 1000) {
      return Optional.empty();
    }
    byte[] expected = sign(principal, payload).getBytes(StandardCharsets.US_ASCII);
    byte[] given = token.substring(cut + 1).getBytes(StandardCharsets.US_ASCII);
    return MessageDigest.isEqual(expected, given) ? Optional.of(principal) : Optional.empty();
  }

  private String sign(Principal principal, String payload) {
    byte[] principalKey =
        hmac(stackKey, concat(principal.clientId() + ":", secrets.get(principal)));
    return Base64.getUrlEncoder()
        .withoutPadding()
        .encodeToString(hmac(principalKey, payload.getBytes(StandardCharsets.UTF_8)));
  }

  private static byte[] concat(String head, byte[] tail) {
    byte[] first = head.getBytes(StandardCharsets.UTF_8);
    byte[] out = new byte[first.length + tail.length];
    System.arraycopy(first, 0, out, 0, first.length);
    System.arraycopy(tail, 0, out, first.length, tail.length);
    return out;
  }

  private static byte[] hmac(byte[] key, byte[] data) {
    try {
      Mac mac = Mac.getInstance(HMAC);
      mac.init(new SecretKeySpec(key, HMAC));
      return mac.doFinal(data);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HMAC-SHA256 unavailable", e);
    }
  }
}
