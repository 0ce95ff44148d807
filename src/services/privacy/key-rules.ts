/**
 * Which object keys name personal data. Keys are compared in a normal form
 * (Unicode NFKC, lower case, separators and spaces removed), so `user-id`,
 * `user.id`, `User_ID` and `userId` are one rule: `userid`.
 */

/** The normal form rules are written in. */
export function normalizeKey(key: string): string {
  return key
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s\-_.:/\\]+/g, '');
}

/** Keys dropped wherever they appear, by normal form. */
const EXACT = new Set([
  // who
  'uid',
  'userid',
  'username',
  'login',
  'loginname',
  'handle',
  'nickname',
  'customerid',
  'customername',
  'accountid',
  'accountname',
  'accountnumber',
  'clientid',
  'personid',
  'memberid',
  'employeeid',
  'patientid',
  'studentid',
  'ownerid',
  'authorid',
  'name',
  'fullname',
  'firstname',
  'lastname',
  'middlename',
  'givenname',
  'familyname',
  'surname',
  'maidenname',
  'displayname',
  'realname',
  'legalname',
  // how to reach them
  'email',
  'emailaddress',
  'mail',
  'phone',
  'phonenumber',
  'mobile',
  'mobilephone',
  'cellphone',
  'tel',
  'telephone',
  'fax',
  'address',
  'street',
  'streetaddress',
  'housenumber',
  'apartment',
  'zip',
  'zipcode',
  'postcode',
  'postalcode',
  // where they are
  'latitude',
  'longitude',
  'lat',
  'lng',
  'lon',
  'geo',
  'geolocation',
  'gps',
  'coordinates',
  'coords',
  // who they are, officially
  'ssn',
  'socialsecuritynumber',
  'nationalid',
  'passport',
  'passportnumber',
  'driverslicense',
  'taxid',
  'iban',
  'creditcard',
  'cardnumber',
  'ccnumber',
  'cvv',
  'dob',
  'dateofbirth',
  'birthdate',
  'birthday',
  // their machine and session
  'ip',
  'ipaddress',
  'ipv4',
  'ipv6',
  'remoteaddr',
  'remoteaddress',
  'clientip',
  'mac',
  'macaddress',
  'deviceid',
  'imei',
  'idfa',
  'advertisingid',
  'session',
  'sessionid',
  'sid',
  'cookie',
  'cookies',
  // what lets someone act as them
  'password',
  'passwd',
  'pwd',
  'passphrase',
  'pin',
  'secret',
  'clientsecret',
  'token',
  'apikey',
  'apisecret',
  'privatekey',
  'authorization',
  'auth',
  'credentials',
  'otp',
  // which model spoke (anonymous sharing hides the sender too)
  'sourcemodel',
]);

/** Endings that make any key personal: `billingEmail`, `csrfToken`, `ownerUserId`, `backupPhoneNumber`. */
const SUFFIXES = [
  'userid',
  'customerid',
  'accountid',
  'email',
  'emailaddress',
  'phone',
  'phonenumber',
  'password',
  'token',
  'apikey',
  'secret',
  'sessionid',
  'ipaddress',
  'macaddress',
  'fullname',
  'firstname',
  'lastname',
  'displayname',
  'username',
  'surname',
  'latitude',
  'longitude',
  'streetaddress',
];

/**
 * Keys naming a person or their account. An object (or array of objects)
 * under one describes that person: inside it, the generic identifiers (`id`,
 * `uuid`, `key`) are personal too (`user: { id }`). A primitive under one
 * (`owner: 'alice'`, `account: 1234`) is itself an identifier and is dropped.
 */
const IDENTITY_CONTAINERS = new Set([
  'user',
  'users',
  'customer',
  'customers',
  'account',
  'accounts',
  'person',
  'people',
  'owner',
  'author',
  'member',
  'members',
  'patient',
  'employee',
  'student',
  'profile',
  'contact',
  'contacts',
  'sender',
  'recipient',
  'client',
  'buyer',
  'seller',
  'creator',
  'assignee',
  'reporter',
]);
const IDENTITY_CHILD = new Set(['id', 'uuid', 'guid', 'key', 'ref', 'number', 'no']);

/** Keys whose string value is a version, so dotted quads in it are not IP addresses. */
const VERSION_KEYS = new Set([
  'version',
  'ver',
  'semver',
  'release',
  'build',
  'revision',
  'rev',
  'tag',
  'appversion',
  'osversion',
]);

export interface KeyRules {
  /** Normal forms to keep even though a built-in rule would drop them. */
  allow: ReadonlySet<string>;
  /** Extra normal forms to drop. */
  deny: ReadonlySet<string>;
  /** Extra patterns (tested against the key as written and its normal form) to drop. */
  denyPatterns: readonly RegExp[];
}

/** Whether a key (in its parent's context) names personal data. */
export function isPersonalKey(key: string, insideIdentity: boolean, rules: KeyRules): boolean {
  const n = normalizeKey(key);
  if (rules.allow.has(n)) return false;
  if (rules.deny.has(n) || rules.denyPatterns.some((p) => test(p, key) || test(p, n))) return true;
  if (EXACT.has(n) || SUFFIXES.some((s) => n.endsWith(s))) return true;
  return insideIdentity && IDENTITY_CHILD.has(n);
}

export function isIdentityContainer(key: string, rules: KeyRules): boolean {
  const n = normalizeKey(key);
  return !rules.allow.has(n) && IDENTITY_CONTAINERS.has(n);
}

export function isVersionKey(key: string): boolean {
  const n = normalizeKey(key);
  return VERSION_KEYS.has(n) || n.endsWith('version');
}

function test(p: RegExp, s: string): boolean {
  p.lastIndex = 0; // a /g pattern would otherwise remember where it stopped
  return p.test(s);
}
