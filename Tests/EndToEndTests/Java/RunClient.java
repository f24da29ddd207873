// A Java client as an app would write it, with no proxy or trust setting of its own, for the
// `tokentap run` tests: `java RunClient MODE URL FORM` POSTs FORM and prints one JSON object.
// MODE `httpclient`: java.net.http.HttpClient.newHttpClient(); `builder`: HttpClient.newBuilder()
// .build(); `urlconnection`: HttpURLConnection.
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

public class RunClient {
    public static void main(String[] args) {
        String mode = args[0], url = args[1], form = args[2];
        try {
            int status;
            String body;
            if (mode.equals("httpclient") || mode.equals("builder")) {
                HttpClient client = mode.equals("httpclient") ? HttpClient.newHttpClient() : HttpClient.newBuilder().build();
                HttpRequest request = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(30))
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .POST(HttpRequest.BodyPublishers.ofString(form)).build();
                HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
                status = response.statusCode();
                body = response.body();
            } else {
                HttpURLConnection connection = (HttpURLConnection) new URL(url).openConnection();
                connection.setConnectTimeout(30000);
                connection.setReadTimeout(30000);
                connection.setRequestMethod("POST");
                connection.setDoOutput(true);
                connection.setRequestProperty("Content-Type", "application/x-www-form-urlencoded");
                try (OutputStream out = connection.getOutputStream()) {
                    out.write(form.getBytes(StandardCharsets.UTF_8));
                }
                status = connection.getResponseCode();
                InputStream in = status < 400 ? connection.getInputStream() : connection.getErrorStream();
                ByteArrayOutputStream bytes = new ByteArrayOutputStream();
                if (in != null) in.transferTo(bytes);
                body = bytes.toString(StandardCharsets.UTF_8);
            }
            System.out.println("{\"ok\":" + (status == 200) + ",\"status\":" + status + ",\"body\":" + quote(body) + "}");
        } catch (Exception error) {
            System.out.println("{\"ok\":false,\"error\":" + quote(error.toString()) + "}");
        }
    }

    static String quote(String text) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : text.toCharArray()) {
            if (c == '"' || c == '\\') out.append('\\').append(c);
            else if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
            else out.append(c);
        }
        return out.append('"').toString();
    }
}
