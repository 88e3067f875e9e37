import { azureFixture } from '../helpers/store-fixtures.js';
import { describeStoreKind } from '../helpers/store-scenarios.js';

describeStoreKind(azureFixture);
