/*
 * What each principal may do: route + method, and for commits the kinds of change in the body.
 *
 *   query     every GET/HEAD (config, namespaces, tables, views), metrics reports.
 *   ingest    query's rights + table commits that append (add-snapshot with operation
 *             "append"), move a branch to the snapshot the same commit adds, set K2's own
 *             table properties (k2.* and commit.retry.num-retries), and add columns
 *             (add-schema that keeps every existing field: K2's workers follow registered,
 *             BACKWARD_TRANSITIVE-checked writer schemas).
 *   maintain  query's rights + table commits that rewrite files without losing rows
 *             (operation "replace"/"overwrite" whose summary adds as many records as it
 *             deletes), move a branch to the snapshot the same commit adds, and expire
 *             snapshots no branch or tag points at.
 *   admin     everything (create, evolve, rename, drop, namespaces, views).
 * Anything not listed is refused: an unknown route or update kind needs admin.
 */
package dev.k2.stack;

import com.fasterxml.jackson.databind.JsonNode;
import dev.k2.stack.CatalogTokens.Principal;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Supplier;
import org.apache.iceberg.Schema;
import org.apache.iceberg.SchemaParser;
import org.apache.iceberg.SnapshotRef;
import org.apache.iceberg.Table;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.rest.RESTUtil;
import org.apache.iceberg.types.Type;
import org.apache.iceberg.types.TypeUtil;
import org.apache.iceberg.types.Types;

final class CatalogPolicy {
  private static final Set<String> INGEST_OPERATIONS = Set.of("append");
  private static final Set<String> MAINTAIN_OPERATIONS = Set.of("replace", "overwrite");

  private final Catalog catalog;

  CatalogPolicy(Catalog catalog) {
    this.catalog = catalog;
  }

  /** Whether the request needs its JSON body to be judged (a commit by a non-admin). */
  static boolean needsBody(Principal principal, String method, List<String> path) {
    return principal != Principal.ADMIN
        && principal != Principal.QUERY
        && "POST".equals(method)
        && (isTableCommit(path) || isTransactionCommit(path));
  }

  /**
   * Null when `principal` may make this request, else why not (the 403's message).
   *
   * @param path the request path's segments after "v1", still URL-encoded
   * @param body the request's JSON body (only read for commits, see needsBody)
   */
  String deny(Principal principal, String method, List<String> path, Supplier<JsonNode> body) {
    if (principal == Principal.ADMIN) {
      return null;
    }
    if ("GET".equals(method) || "HEAD".equals(method)) {
      return null;
    }
    if ("POST".equals(method) && isMetricsReport(path)) {
      return null;
    }
    if (principal != Principal.QUERY && "POST".equals(method)) {
      if (isTableCommit(path)) {
        TableIdentifier table =
            TableIdentifier.of(RESTUtil.decodeNamespace(path.get(1)), RESTUtil.decodeString(path.get(3)));
        return denyCommit(principal, table, body.get());
      }
      if (isTransactionCommit(path)) {
        for (JsonNode change : body.get().path("table-changes")) {
          String why = denyCommit(principal, identifier(change.path("identifier")), change);
          if (why != null) {
            return why;
          }
        }
        return null;
      }
    }
    return principal.clientId() + " may not " + method + " /v1/" + String.join("/", path);
  }

  // v1/namespaces/{ns}/tables/{table}
  private static boolean isTableCommit(List<String> path) {
    return path.size() == 4 && "namespaces".equals(path.get(0)) && "tables".equals(path.get(2));
  }

  // v1/namespaces/{ns}/tables/{table}/metrics
  private static boolean isMetricsReport(List<String> path) {
    return path.size() == 5
        && "namespaces".equals(path.get(0))
        && "tables".equals(path.get(2))
        && "metrics".equals(path.get(4));
  }

  // v1/transactions/commit
  private static boolean isTransactionCommit(List<String> path) {
    return path.size() == 2 && "transactions".equals(path.get(0)) && "commit".equals(path.get(1));
  }

  private static TableIdentifier identifier(JsonNode node) {
    List<String> levels = new ArrayList<>();
    node.path("namespace").forEach(level -> levels.add(level.asText()));
    return TableIdentifier.of(Namespace.of(levels.toArray(new String[0])), node.path("name").asText());
  }

  private String denyCommit(Principal principal, TableIdentifier table, JsonNode commit) {
    for (JsonNode requirement : commit.path("requirements")) {
      if ("assert-create".equals(requirement.path("type").asText())) {
        return principal.clientId() + " may not create table " + table;
      }
    }
    Set<Long> added = new HashSet<>();
    for (JsonNode update : commit.path("updates")) {
      if ("add-snapshot".equals(update.path("action").asText())) {
        added.add(update.path("snapshot").path("snapshot-id").asLong());
      }
    }
    for (JsonNode update : commit.path("updates")) {
      String action = update.path("action").asText();
      String why =
          principal == Principal.INGEST
              ? denyIngestUpdate(table, action, update, added)
              : denyMaintainUpdate(table, action, update, added);
      if (why != null) {
        return principal.clientId() + " may not " + why + " on " + table;
      }
    }
    return null;
  }

  private String denyIngestUpdate(
      TableIdentifier table, String action, JsonNode update, Set<Long> added) {
    switch (action) {
      case "add-snapshot":
        return operationIn(update, INGEST_OPERATIONS);
      case "set-snapshot-ref":
        return refToAdded(update, added);
      case "set-properties":
        for (Iterator<String> keys = update.path("updates").fieldNames(); keys.hasNext(); ) {
          String key = keys.next();
          if (!key.startsWith("k2.") && !"commit.retry.num-retries".equals(key)) {
            return "set table property " + key;
          }
        }
        return null;
      case "add-schema":
        return additive(table, SchemaParser.fromJson(update.path("schema")));
      case "set-current-schema":
        return null;
      default:
        return action;
    }
  }

  private String denyMaintainUpdate(
      TableIdentifier table, String action, JsonNode update, Set<Long> added) {
    switch (action) {
      case "add-snapshot":
        {
          String why = operationIn(update, MAINTAIN_OPERATIONS);
          if (why != null) {
            return why;
          }
          JsonNode summary = update.path("snapshot").path("summary");
          String addedRecords = summary.path("added-records").asText("0");
          String deletedRecords = summary.path("deleted-records").asText("0");
          return addedRecords.equals(deletedRecords)
              ? null
              : "commit a rewrite that adds "
                  + addedRecords
                  + " records and deletes "
                  + deletedRecords;
        }
      case "set-snapshot-ref":
        return refToAdded(update, added);
      case "remove-snapshots":
        {
          Set<Long> referenced = new HashSet<>();
          Table loaded = catalog.loadTable(table);
          for (Map.Entry<String, SnapshotRef> ref : loaded.refs().entrySet()) {
            referenced.add(ref.getValue().snapshotId());
          }
          for (JsonNode id : update.path("snapshot-ids")) {
            if (referenced.contains(id.asLong())) {
              return "expire snapshot " + id.asLong() + " (a branch or tag points at it)";
            }
          }
          return null;
        }
      default:
        return action;
    }
  }

  private static String operationIn(JsonNode update, Set<String> allowed) {
    String operation = update.path("snapshot").path("summary").path("operation").asText();
    return allowed.contains(operation) ? null : "commit a snapshot of operation '" + operation + "'";
  }

  // A branch may only move forward to the snapshot this same commit adds: never a rollback.
  private static String refToAdded(JsonNode update, Set<Long> added) {
    long target = update.path("snapshot-id").asLong();
    if ("branch".equals(update.path("type").asText()) && added.contains(target)) {
      return null;
    }
    return "point " + update.path("ref-name").asText() + " at an existing snapshot " + target;
  }

  // Adding columns is how K2's workers follow new writer schemas; dropping, renaming or
  // retyping one (other than Iceberg's safe promotions) is evolution, and admin's.
  private String additive(TableIdentifier table, Schema proposed) {
    Schema current = catalog.loadTable(table).schema();
    for (Types.NestedField field : TypeUtil.indexById(current.asStruct()).values()) {
      Types.NestedField next = proposed.findField(field.fieldId());
      String name = current.findColumnName(field.fieldId());
      if (next == null || !name.equals(proposed.findColumnName(field.fieldId()))) {
        return "drop or rename column " + name;
      }
      Type was = field.type();
      Type now = next.type();
      if (was.isPrimitiveType()
          && !was.equals(now)
          && !(now.isPrimitiveType() && TypeUtil.isPromotionAllowed(was, now.asPrimitiveType()))) {
        return "change the type of column " + name;
      }
      if (field.isOptional() && next.isRequired()) {
        return "make column " + name + " required";
      }
    }
    return null;
  }
}
