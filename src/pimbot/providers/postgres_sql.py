"""The catalog queries of the postgres provider (values bound, never formatted in)."""

ROLE_EXISTS = "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)"
LOGIN = """
-- pimbot's own user is left out of the members: PostgreSQL 16 makes a CREATEROLE user a
-- member (with ADMIN OPTION) of every role it creates
SELECT r.rolcanlogin AS can_login, r.rolsuper AS superuser,
       r.rolname = current_user AS is_pimbot,
       EXISTS (SELECT 1 FROM pg_auth_members m WHERE m.roleid = r.oid
               AND m.member <> (SELECT oid FROM pg_roles WHERE rolname = current_user))
         AS has_members,
       shobj_description(r.oid, 'pg_authid') AS note
FROM pg_roles r WHERE r.rolname = $1
"""
ME = """
SELECT current_user AS name, rolsuper AS superuser, rolcreaterole AS createrole
FROM pg_roles WHERE rolname = current_user
"""
GRANTABLE = """
-- before PostgreSQL 16, CREATEROLE could grant any role that is not a superuser
SELECT pg_has_role(current_user, r.oid, 'MEMBER WITH ADMIN OPTION')
       OR (current_setting('server_version_num')::int < 160000 AND NOT r.rolsuper
           AND (SELECT rolcreaterole FROM pg_roles WHERE rolname = current_user)) AS admin
FROM pg_roles r WHERE r.rolname = $1
"""
MEMBERS = """
-- everyone who is a direct member of the role, but pimbot's own user (see _LOGIN)
SELECT u.rolname AS login, u.rolcanlogin AS can_login,
       shobj_description(u.oid, 'pg_authid') AS note
FROM pg_auth_members m
JOIN pg_roles r ON r.oid = m.roleid
JOIN pg_roles u ON u.oid = m.member
WHERE r.rolname = $1 AND u.rolname <> current_user
ORDER BY u.rolname
"""
MEMBERSHIP = """
SELECT shobj_description(u.oid, 'pg_authid') AS note
FROM pg_auth_members m
JOIN pg_roles r ON r.oid = m.roleid
JOIN pg_roles u ON u.oid = m.member
WHERE r.rolname = $1 AND u.rolname = $2
"""
