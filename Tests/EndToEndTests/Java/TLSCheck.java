// Java 17's own certificate checks, for the constrained-CA end-to-end tests. Trusts exactly one
// root (a PEM file) and nothing else; prints one line and exits 0 when the check passes, 1 when
// it fails (with the exception chain), 2 on bad usage.
//
//   java TLSCheck proxy PROXY_HOST PROXY_PORT ROOT_PEM URL      GET URL through an HTTP proxy (CONNECT)
//   java TLSCheck direct HOST PORT NAME ROOT_PEM               TLS handshake, SNI and hostname check for NAME
//   java TLSCheck pkix ROOT_PEM CERT_PEM...                    CertPathValidator (PKIX), leaf first, root as the only trust anchor
import java.io.FileInputStream;
import java.net.InetSocketAddress;
import java.net.ProxySelector;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.security.KeyStore;
import java.security.cert.CertPath;
import java.security.cert.CertPathValidator;
import java.security.cert.CertificateFactory;
import java.security.cert.PKIXParameters;
import java.security.cert.TrustAnchor;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import javax.net.ssl.SNIHostName;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

public class TLSCheck {
    static X509Certificate read(String path) throws Exception {
        try (FileInputStream in = new FileInputStream(path)) {
            return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
        }
    }

    static SSLContext trusting(String rootPem) throws Exception {
        KeyStore store = KeyStore.getInstance("PKCS12");
        store.load(null, null);
        store.setCertificateEntry("root", read(rootPem));
        TrustManagerFactory factory = TrustManagerFactory.getInstance("PKIX");
        factory.init(store);
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(null, factory.getTrustManagers(), null);
        return context;
    }

    static boolean isIP(String name) {
        return name.matches("[0-9.]+") || name.contains(":");
    }

    public static void main(String[] args) {
        try {
            switch (args.length > 0 ? args[0] : "") {
                case "proxy": {
                    HttpClient client = HttpClient.newBuilder()
                        .proxy(ProxySelector.of(new InetSocketAddress(args[1], Integer.parseInt(args[2]))))
                        .sslContext(trusting(args[3]))
                        .version(HttpClient.Version.HTTP_1_1)
                        .connectTimeout(Duration.ofSeconds(20))
                        .build();
                    HttpRequest request = HttpRequest.newBuilder(URI.create(args[4])).timeout(Duration.ofSeconds(30)).build();
                    HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
                    System.out.println("status " + response.statusCode() + " " + response.body().trim());
                    System.exit(response.statusCode() == 200 ? 0 : 1);
                }
                case "direct": {
                    SSLContext context = trusting(args[4]);
                    // Layered on a plain socket to HOST, so that hostname verification checks NAME.
                    try (java.net.Socket raw = new java.net.Socket(args[1], Integer.parseInt(args[2]));
                         SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket(raw, args[3], Integer.parseInt(args[2]), true)) {
                        SSLParameters parameters = socket.getSSLParameters();
                        parameters.setEndpointIdentificationAlgorithm("HTTPS");
                        if (!isIP(args[3])) parameters.setServerNames(List.of(new SNIHostName(args[3])));
                        socket.setSSLParameters(parameters);
                        socket.setSoTimeout(20000);
                        socket.startHandshake();
                        System.out.println("verified " + socket.getSession().getProtocol() + " chain of "
                            + socket.getSession().getPeerCertificates().length);
                    }
                    System.exit(0);
                }
                case "pkix": {
                    List<X509Certificate> certificates = new ArrayList<>();
                    for (int i = 2; i < args.length; i++) certificates.add(read(args[i]));
                    CertPath path = CertificateFactory.getInstance("X.509").generateCertPath(certificates);
                    PKIXParameters parameters = new PKIXParameters(Set.of(new TrustAnchor(read(args[1]), null)));
                    parameters.setRevocationEnabled(false);
                    CertPathValidator.getInstance("PKIX").validate(path, parameters);
                    System.out.println("verified path of " + certificates.size());
                    System.exit(0);
                }
                default:
                    System.err.println("usage: TLSCheck proxy|direct|pkix ...");
                    System.exit(2);
            }
        } catch (Exception e) {
            System.out.println("rejected: " + e);
            for (Throwable cause = e.getCause(); cause != null; cause = cause.getCause()) System.out.println("  caused by: " + cause);
            System.exit(1);
        }
    }
}
