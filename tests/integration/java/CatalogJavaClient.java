/*
 * A plain Iceberg Java client (what Spark's Iceberg catalog uses): RESTCatalog with the
 * standard `credential` property, no K2 code. Prints one line per step for the test to read.
 * Arguments: <catalog uri> <client_id:client_secret> <namespace to create and drop>
 */
import java.util.Map;
import org.apache.iceberg.Schema;
import org.apache.iceberg.catalog.Namespace;
import org.apache.iceberg.catalog.TableIdentifier;
import org.apache.iceberg.rest.RESTCatalog;
import org.apache.iceberg.types.Types;

public final class CatalogJavaClient {
  public static void main(String[] args) throws Exception {
    try (RESTCatalog catalog = new RESTCatalog()) {
      catalog.initialize(
          "k2",
          Map.of(
              "uri", args[0],
              "credential", args[1],
              "scope", "catalog",
              "rest.auth.type", "oauth2",
              "oauth2-server-uri", args[0] + "/v1/oauth/tokens"));
      System.out.println("listed " + catalog.listNamespaces().size());
      Namespace namespace = Namespace.of(args[2]);
      TableIdentifier table = TableIdentifier.of(namespace, "t");
      try {
        catalog.createNamespace(namespace);
        Schema schema = new Schema(Types.NestedField.optional(1, "x", Types.LongType.get()));
        catalog.createTable(table, schema);
        System.out.println("created");
        catalog.dropTable(table, true);
        catalog.dropNamespace(namespace);
        System.out.println("dropped");
      } catch (RuntimeException e) { // a refusal (ForbiddenException) ends the steps
        System.out.println("refused " + e.getClass().getSimpleName());
      }
    }
  }
}
