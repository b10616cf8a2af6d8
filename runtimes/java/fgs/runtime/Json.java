package fgs.runtime;

import java.lang.reflect.Array;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.math.BigDecimal;
import java.math.BigInteger;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * JSON for the event and the result, with no library on the function's classpath: a function
 * that ships its own Gson or Jackson keeps its own version. Parses into Map, List, String,
 * Long/Double, Boolean and null; maps a parsed value onto a class through its fields (public
 * setters first); writes maps, collections, arrays, numbers, strings and objects (public getters,
 * else fields).
 */
final class Json {
    private final String s;
    private int i;

    private Json(String s) {
        this.s = s;
    }

    static Object parse(String text) {
        Json p = new Json(text);
        p.ws();
        Object v = p.value();
        p.ws();
        if (p.i != p.s.length()) {
            throw p.error("trailing characters");
        }
        return v;
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException("invalid JSON at " + i + ": " + what);
    }

    private void ws() {
        while (i < s.length() && Character.isWhitespace(s.charAt(i))) {
            i++;
        }
    }

    private Object value() {
        if (i >= s.length()) {
            throw error("unexpected end");
        }
        char c = s.charAt(i);
        switch (c) {
            case '{':
                return object();
            case '[':
                return array();
            case '"':
                return string();
            case 't':
                return literal("true", Boolean.TRUE);
            case 'f':
                return literal("false", Boolean.FALSE);
            case 'n':
                return literal("null", null);
            default:
                return number();
        }
    }

    private Object literal(String word, Object v) {
        if (!s.startsWith(word, i)) {
            throw error("unexpected character");
        }
        i += word.length();
        return v;
    }

    private Map<String, Object> object() {
        Map<String, Object> m = new LinkedHashMap<>();
        i++;
        ws();
        if (i < s.length() && s.charAt(i) == '}') {
            i++;
            return m;
        }
        while (true) {
            ws();
            if (i >= s.length() || s.charAt(i) != '"') {
                throw error("expected a key");
            }
            String k = string();
            ws();
            expect(':');
            ws();
            m.put(k, value());
            ws();
            if (i < s.length() && s.charAt(i) == ',') {
                i++;
                continue;
            }
            expect('}');
            return m;
        }
    }

    private List<Object> array() {
        List<Object> l = new ArrayList<>();
        i++;
        ws();
        if (i < s.length() && s.charAt(i) == ']') {
            i++;
            return l;
        }
        while (true) {
            ws();
            l.add(value());
            ws();
            if (i < s.length() && s.charAt(i) == ',') {
                i++;
                continue;
            }
            expect(']');
            return l;
        }
    }

    private void expect(char c) {
        if (i >= s.length() || s.charAt(i) != c) {
            throw error("expected '" + c + "'");
        }
        i++;
    }

    private String string() {
        StringBuilder b = new StringBuilder();
        i++;
        while (true) {
            if (i >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(i++);
            if (c == '"') {
                return b.toString();
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            if (i >= s.length()) {
                throw error("unterminated escape");
            }
            char e = s.charAt(i++);
            switch (e) {
                case 'n': b.append('\n'); break;
                case 't': b.append('\t'); break;
                case 'r': b.append('\r'); break;
                case 'b': b.append('\b'); break;
                case 'f': b.append('\f'); break;
                case 'u':
                    if (i + 4 > s.length()) {
                        throw error("short \\u escape");
                    }
                    b.append((char) Integer.parseInt(s.substring(i, i + 4), 16));
                    i += 4;
                    break;
                default: b.append(e);
            }
        }
    }

    private Object number() {
        int start = i;
        boolean real = false;
        while (i < s.length() && "+-0123456789.eE".indexOf(s.charAt(i)) >= 0) {
            real |= "eE.".indexOf(s.charAt(i)) >= 0;
            i++;
        }
        if (start == i) {
            throw error("unexpected character");
        }
        String n = s.substring(start, i);
        if (real) {
            return Double.valueOf(n);
        }
        try {
            return Long.valueOf(n);
        } catch (NumberFormatException big) {
            return new BigInteger(n);
        }
    }

    /** A parsed value as `type` (the handler's event parameter). */
    @SuppressWarnings({"unchecked", "rawtypes"})
    static Object convert(Object v, Type type) throws ReflectiveOperationException {
        Class<?> raw = rawClass(type);
        if (v == null) {
            return raw.isPrimitive() ? convert(0L, type) : null;
        }
        if (raw == Object.class || raw.isInstance(v) && !(v instanceof Map || v instanceof List)) {
            return v;
        }
        if (raw == String.class) {
            return v instanceof String ? v : write(v);
        }
        if (v instanceof Number) {
            Number n = (Number) v;
            if (raw == int.class || raw == Integer.class) return n.intValue();
            if (raw == long.class || raw == Long.class) return n.longValue();
            if (raw == double.class || raw == Double.class) return n.doubleValue();
            if (raw == float.class || raw == Float.class) return n.floatValue();
            if (raw == short.class || raw == Short.class) return n.shortValue();
            if (raw == byte.class || raw == Byte.class) return n.byteValue();
            if (raw == BigDecimal.class) return new BigDecimal(n.toString());
            if (raw == BigInteger.class) return new BigInteger(n.toString());
        }
        if ((raw == boolean.class || raw == Boolean.class) && v instanceof Boolean) {
            return v;
        }
        if (raw.isEnum() && v instanceof String) {
            return Enum.valueOf((Class<Enum>) raw, (String) v);
        }
        Type[] args = type instanceof ParameterizedType
            ? ((ParameterizedType) type).getActualTypeArguments() : new Type[0];
        if (v instanceof List) {
            List<?> l = (List<?>) v;
            if (raw.isArray()) {
                Object a = Array.newInstance(raw.getComponentType(), l.size());
                for (int k = 0; k < l.size(); k++) {
                    Array.set(a, k, convert(l.get(k), raw.getComponentType()));
                }
                return a;
            }
            if (Collection.class.isAssignableFrom(raw)) {
                Collection<Object> out = raw.isInterface() ? new ArrayList<>()
                    : (Collection<Object>) raw.getDeclaredConstructor().newInstance();
                for (Object x : l) {
                    out.add(convert(x, args.length == 1 ? args[0] : Object.class));
                }
                return out;
            }
        }
        if (v instanceof Map) {
            Map<String, Object> m = (Map<String, Object>) v;
            if (Map.class.isAssignableFrom(raw)) {
                Map<Object, Object> out = raw.isInterface() ? new LinkedHashMap<>()
                    : (Map<Object, Object>) raw.getDeclaredConstructor().newInstance();
                for (Map.Entry<String, Object> e : m.entrySet()) {
                    out.put(e.getKey(), convert(e.getValue(), args.length == 2 ? args[1] : Object.class));
                }
                return out;
            }
            return toObject(m, raw);
        }
        throw new IllegalArgumentException("cannot map " + write(v) + " onto " + raw.getName());
    }

    private static Object toObject(Map<String, Object> m, Class<?> raw)
            throws ReflectiveOperationException {
        java.lang.reflect.Constructor<?> ctor = raw.getDeclaredConstructor();
        ctor.setAccessible(true);
        Object o = ctor.newInstance();
        for (Map.Entry<String, Object> e : m.entrySet()) {
            String k = e.getKey();
            if (k.isEmpty()) {
                continue;
            }
            String setter = "set" + Character.toUpperCase(k.charAt(0)) + k.substring(1);
            Method set = null;
            for (Method mt : raw.getMethods()) {
                if (mt.getName().equals(setter) && mt.getParameterCount() == 1) {
                    set = mt;
                    break;
                }
            }
            if (set != null) {
                set.invoke(o, convert(e.getValue(), set.getGenericParameterTypes()[0]));
                continue;
            }
            Field f = field(raw, k);
            if (f != null) {
                f.setAccessible(true);
                f.set(o, convert(e.getValue(), f.getGenericType()));
            }
        }
        return o;
    }

    private static Field field(Class<?> c, String name) {
        for (; c != null && c != Object.class; c = c.getSuperclass()) {
            try {
                Field f = c.getDeclaredField(name);
                if (!Modifier.isStatic(f.getModifiers())) {
                    return f;
                }
            } catch (NoSuchFieldException next) {
                // a superclass may have it
            }
        }
        return null;
    }

    private static Class<?> rawClass(Type t) {
        if (t instanceof Class) {
            return (Class<?>) t;
        }
        if (t instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) t).getRawType();
        }
        return Object.class;
    }

    static String write(Object v) {
        StringBuilder b = new StringBuilder();
        write(b, v, 0);
        return b.toString();
    }

    private static void write(StringBuilder b, Object v, int depth) {
        if (depth > 64) {
            throw new IllegalArgumentException("the result nests deeper than 64 levels");
        }
        if (v == null) {
            b.append("null");
        } else if (v instanceof String || v instanceof Character || v instanceof Enum) {
            quote(b, v.toString());
        } else if (v instanceof Number || v instanceof Boolean) {
            b.append(v);
        } else if (v instanceof Map) {
            b.append('{');
            boolean first = true;
            for (Map.Entry<?, ?> e : ((Map<?, ?>) v).entrySet()) {
                if (!first) b.append(',');
                first = false;
                quote(b, String.valueOf(e.getKey()));
                b.append(':');
                write(b, e.getValue(), depth + 1);
            }
            b.append('}');
        } else if (v instanceof Iterable) {
            b.append('[');
            boolean first = true;
            for (Object x : (Iterable<?>) v) {
                if (!first) b.append(',');
                first = false;
                write(b, x, depth + 1);
            }
            b.append(']');
        } else if (v.getClass().isArray()) {
            b.append('[');
            for (int k = 0; k < Array.getLength(v); k++) {
                if (k > 0) b.append(',');
                write(b, Array.get(v, k), depth + 1);
            }
            b.append(']');
        } else {
            write(b, properties(v), depth + 1);
        }
    }

    /** An object's public getters, else its fields (in the order reflection lists them). */
    private static Map<String, Object> properties(Object o) {
        Map<String, Object> m = new LinkedHashMap<>();
        try {
            for (Method mt : o.getClass().getMethods()) {
                String n = mt.getName();
                if (mt.getParameterCount() != 0 || Modifier.isStatic(mt.getModifiers())
                        || mt.getDeclaringClass() == Object.class) {
                    continue;
                }
                String prop = null;
                if (n.startsWith("get") && n.length() > 3) {
                    prop = n.substring(3);
                } else if (n.startsWith("is") && n.length() > 2 && mt.getReturnType() == boolean.class) {
                    prop = n.substring(2);
                }
                if (prop != null) {
                    m.put(Character.toLowerCase(prop.charAt(0)) + prop.substring(1), mt.invoke(o));
                }
            }
            if (m.isEmpty()) {
                for (Class<?> c = o.getClass(); c != null && c != Object.class; c = c.getSuperclass()) {
                    for (Field f : c.getDeclaredFields()) {
                        if (!Modifier.isStatic(f.getModifiers()) && !f.isSynthetic()) {
                            f.setAccessible(true);
                            m.putIfAbsent(f.getName(), f.get(o));
                        }
                    }
                }
            }
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new IllegalArgumentException("cannot write " + o.getClass().getName() + " as JSON: " + e);
        }
        return m;
    }

    private static void quote(StringBuilder b, String s) {
        b.append('"');
        for (int k = 0; k < s.length(); k++) {
            char c = s.charAt(k);
            switch (c) {
                case '"': b.append("\\\""); break;
                case '\\': b.append("\\\\"); break;
                case '\n': b.append("\\n"); break;
                case '\r': b.append("\\r"); break;
                case '\t': b.append("\\t"); break;
                default:
                    if (c < 0x20) {
                        b.append(String.format("\\u%04x", (int) c));
                    } else {
                        b.append(c);
                    }
            }
        }
        b.append('"');
    }
}
