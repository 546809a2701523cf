/*
 * Runs Apache Iceberg's REST catalog fixture server bound to one address (127.0.0.1) only.
 *
 * Why this file exists: org.apache.iceberg.rest.RESTCatalogServer (Iceberg 1.10, open-api
 * test-fixtures) builds its Jetty server with `new Server(port)`, which listens on every
 * interface (0.0.0.0) with SO_REUSEPORT, and has no host option. K2's stack binds everything to
 * loopback, so this wrapper does what RESTCatalogServer.start() does, reusing Iceberg's own
 * catalog set-up (CATALOG_* environment variables, JDBC default, warehouse) through reflection,
 * but gives the Jetty connector an explicit host and no SO_REUSEPORT (a taken port is an error).
 *
 * Configuration: exactly the fixture's CATALOG_* environment variables (port: CATALOG_REST_PORT);
 * the bind address comes from the system property k2.rest.host (default 127.0.0.1).
 *
 * Every request passes CatalogAuthFilter first (OAuth2 client credentials, bearer tokens,
 * least-privilege principals: CatalogTokens, CatalogPolicy), configured by K2_CATALOG_AUTH_*
 * variables; without them the server refuses to start, so it never serves unauthenticated.
 * Compiled against the classpath of infra/k2stack/local/maven/iceberg-rest.xml (Jetty 11);
 * Iceberg 1.11+ moved to Jetty 12 ee10, whose servlet classes live in org.eclipse.jetty.ee10.
 */
package dev.k2.stack;

import java.lang.reflect.Constructor;
import java.lang.reflect.Method;
import java.util.EnumSet;
import java.util.Map;
import jakarta.servlet.DispatcherType;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.rest.RESTCatalogAdapter;
import org.apache.iceberg.rest.RESTCatalogServlet;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.FilterHolder;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;

public final class LoopbackRESTCatalogServer {
  private static final String SERVER = "org.apache.iceberg.rest.RESTCatalogServer";
  private static final String CONTEXT = SERVER + "$CatalogContext";
  private static final String ADAPTER = "org.apache.iceberg.rest.RESTServerCatalogAdapter";
  private static final int DEFAULT_PORT = 8181;

  private LoopbackRESTCatalogServer() {}

  public static void main(String[] args) throws Exception {
    String host = System.getProperty("k2.rest.host", "127.0.0.1");
    // Before the catalog starts: a missing credential is a configuration error, said at once.
    CatalogTokens tokens = CatalogTokens.fromEnv(System.getenv());

    // Iceberg's own catalog initialisation: environment -> properties -> JdbcCatalog.
    Class<?> serverClass = Class.forName(SERVER);
    Constructor<?> serverCtor = serverClass.getDeclaredConstructor();
    serverCtor.setAccessible(true);
    Object fixture = serverCtor.newInstance();
    Method init = serverClass.getDeclaredMethod("initializeBackendCatalog");
    init.setAccessible(true);
    Object catalogContext = init.invoke(fixture);

    Class<?> contextClass = Class.forName(CONTEXT);
    Method configuration = contextClass.getDeclaredMethod("configuration");
    configuration.setAccessible(true);
    @SuppressWarnings("unchecked")
    Map<String, String> properties = (Map<String, String>) configuration.invoke(catalogContext);
    Method catalogOf = contextClass.getDeclaredMethod("catalog");
    catalogOf.setAccessible(true);
    Catalog catalog = (Catalog) catalogOf.invoke(catalogContext);

    Constructor<?> adapterCtor = Class.forName(ADAPTER).getDeclaredConstructor(contextClass);
    adapterCtor.setAccessible(true);
    RESTCatalogAdapter adapter = (RESTCatalogAdapter) adapterCtor.newInstance(catalogContext);

    // The same servlet set-up as RESTCatalogServer.start(), with an explicit bind address.
    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    context.addFilter(
        new FilterHolder(new CatalogAuthFilter(tokens, new CatalogPolicy(catalog))),
        "/*",
        EnumSet.of(DispatcherType.REQUEST));
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(host);
    connector.setPort(Integer.parseInt(properties.getOrDefault("rest.port", "" + DEFAULT_PORT)));
    server.addConnector(connector);
    server.setHandler(context);
    server.setStopAtShutdown(true);
    server.start();
    System.out.println(
        "K2 Iceberg REST catalog listening on " + host + ":" + connector.getLocalPort());
    server.join();
  }
}
